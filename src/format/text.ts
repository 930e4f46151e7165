// Text that came from somewhere else (a repository, a storage host, a source tree) on its way to a
// terminal or a log line: control characters are escaped, so a crafted name, host or tag can neither
// move the cursor, change colours or the window title, nor split one line of output into two.

// C0 and C1 controls, DEL, the Unicode line and paragraph separators, bidirectional overrides.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every control character written as an escape (\x1b, \u202e); '\\' stays as it is. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, escapeOne);
}

/** A name quoted for a message: in double quotes, control characters escaped. */
export function quoteName(name: string): string {
  return `"${escapeControl(name)}"`;
}
