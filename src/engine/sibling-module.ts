// Worker scripts are started by URL, which the TypeScript build does not rewrite: from the sources the
// sibling is a .ts file, from the published package (compiled by `prepack`) a .js file.
export function siblingModule(importMetaUrl: string, name: string): URL {
  return new URL(`./${name}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl);
}
