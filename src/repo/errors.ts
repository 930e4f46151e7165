// The error of the repository layer: a message written for the user (what is wrong, what to do).
export class RepositoryError extends Error {
  override name = 'RepositoryError';
}

/** The location holds no repository (no config object). */
export class NoRepositoryError extends RepositoryError {
  override name = 'NoRepositoryError';
}

/** No key file of the repository opens with the passphrase. */
export class WrongPassphraseError extends RepositoryError {
  override name = 'WrongPassphraseError';
}
