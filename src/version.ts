// The program's version, from package.json (one level up from both src/ and the compiled dist/).
import fs from 'node:fs';

export const VERSION: string = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
