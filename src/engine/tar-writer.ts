// A tar (POSIX pax) writer for `coffer dump`. Names are raw bytes: a name that does not fit the ustar
// header, or is not plain ASCII, goes into a pax extended header, with `hdrcharset=BINARY` when it is
// not valid UTF-8, so every name comes back exactly as it was (libarchive and GNU tar both read it).
// Sub-second times, sizes of 8 GiB and more and large owner ids also go into the pax header.
import type { Writable } from 'node:stream';

const BLOCK = 512;
const MAX_OCTAL_11 = 0o77777777777;
const MAX_OCTAL_7 = 0o7777777;

export type TarEntryType = 'file' | 'link' | 'symlink' | 'dir' | 'fifo';

const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', link: '1', symlink: '2', dir: '5', fifo: '6' };

export interface TarEntry {
  readonly type: TarEntryType;
  /** Raw path bytes, relative ('a/b'); directories get their trailing '/' here. */
  readonly name: Buffer;
  /** Target of a symlink, or the earlier entry a hard link points at. */
  readonly linkname?: Buffer;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  /** Bytes of a file's content. */
  readonly size?: number;
}

/** What fits a ustar text field unchanged: printable ASCII. */
function plainAscii(bytes: Buffer): boolean {
  for (const b of bytes) if (b < 0x20 || b > 0x7e) return false;
  return true;
}

function validUtf8(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8')).equals(bytes);
}

/** One pax record, "LEN key=value\n", where LEN counts the whole record including its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0');
}

function header(name: Buffer, typeFlag: string, fields: { mode: number; uid: number; gid: number; size: number; mtime: number; linkname?: Buffer }): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(name.length, 100));
  h.write(octal(fields.mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(fields.uid, 8), 108, 'ascii');
  h.write(octal(fields.gid, 8), 116, 'ascii');
  h.write(octal(fields.size, 12), 124, 'ascii');
  h.write(octal(fields.mtime, 12), 136, 'ascii');
  h.write(typeFlag, 156, 'ascii');
  fields.linkname?.copy(h, 157, 0, Math.min(fields.linkname.length, 100));
  h.write('ustar\x0000', 257, 'ascii');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${octal(sum, 7)}\0`, 148, 'ascii');
  return h;
}

/** A stand-in for the ustar name field when the real name is in the pax header. */
function placeholder(name: Buffer): Buffer {
  return Buffer.from(Array.from(name.subarray(0, 100), (b) => (b >= 0x20 && b <= 0x7e ? b : 0x5f)));
}

export class TarWriter {
  private readonly out: Writable;

  constructor(out: Writable) {
    this.out = out;
  }

  private async write(bytes: Buffer): Promise<void> {
    if (!this.out.write(bytes)) await new Promise<void>((resolve, reject) => {
      this.out.once('drain', resolve);
      this.out.once('error', reject);
    });
  }

  private padding(size: number): Buffer {
    return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
  }

  /** Writes one entry; a file's `content` must add up to its `size`. */
  async entry(entry: TarEntry, content?: AsyncIterable<Buffer>): Promise<void> {
    const size = entry.type === 'file' ? (entry.size ?? 0) : 0;
    const seconds = entry.mtimeNs / 1_000_000_000n;
    const nanos = entry.mtimeNs % 1_000_000_000n;
    const pax: Buffer[] = [];
    const binary = !validUtf8(entry.name) || (entry.linkname !== undefined && !validUtf8(entry.linkname));
    if (binary) pax.push(paxRecord('hdrcharset', Buffer.from('BINARY')));
    const nameFits = entry.name.length <= 100 && plainAscii(entry.name);
    if (!nameFits) pax.push(paxRecord('path', entry.name));
    const linkFits = entry.linkname === undefined || (entry.linkname.length <= 100 && plainAscii(entry.linkname));
    if (!linkFits) pax.push(paxRecord('linkpath', entry.linkname!));
    if (nanos !== 0n || seconds < 0n || seconds > BigInt(MAX_OCTAL_11)) {
      const abs = entry.mtimeNs < 0n ? -entry.mtimeNs : entry.mtimeNs;
      const text = `${entry.mtimeNs < 0n ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
      pax.push(paxRecord('mtime', Buffer.from(text)));
    }
    if (size > MAX_OCTAL_11) pax.push(paxRecord('size', Buffer.from(String(size))));
    if (entry.uid > MAX_OCTAL_7) pax.push(paxRecord('uid', Buffer.from(String(entry.uid))));
    if (entry.gid > MAX_OCTAL_7) pax.push(paxRecord('gid', Buffer.from(String(entry.gid))));
    const mtime = Number(seconds < 0n ? 0n : seconds > BigInt(MAX_OCTAL_11) ? BigInt(MAX_OCTAL_11) : seconds);
    if (pax.length > 0) {
      const records = Buffer.concat(pax);
      await this.write(header(Buffer.from(`PaxHeader/${placeholder(entry.name).toString('latin1').slice(-80)}`), 'x', { mode: 0o644, uid: 0, gid: 0, size: records.length, mtime }));
      await this.write(Buffer.concat([records, this.padding(records.length)]));
    }
    const fields = {
      mode: entry.mode,
      uid: Math.min(entry.uid, MAX_OCTAL_7),
      gid: Math.min(entry.gid, MAX_OCTAL_7),
      size: Math.min(size, MAX_OCTAL_11),
      mtime,
      ...(entry.linkname ? { linkname: linkFits ? entry.linkname : placeholder(entry.linkname) } : {}),
    };
    await this.write(header(nameFits ? entry.name : placeholder(entry.name), TYPE_FLAG[entry.type], fields));
    if (entry.type !== 'file') return;
    let written = 0;
    for await (const chunk of content ?? []) {
      written += chunk.length;
      if (written > size) throw new Error(`${entry.name.toString()}: the content is longer than its recorded size ${size}`);
      await this.write(chunk);
    }
    if (written !== size) throw new Error(`${entry.name.toString()}: the content has ${written} bytes, its recorded size is ${size}`);
    await this.write(this.padding(size));
  }

  /** The two empty blocks that end an archive. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }
}
