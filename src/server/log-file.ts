// The server's log file, rotated by size: server.log grows to maxBytes, then becomes server.log.1 (the
// older ones shift up, the oldest beyond maxFiles goes). Lines are written synchronously, so the last
// lines before a crash are on disk; pino writes one JSON object per line into it.
import fs from 'node:fs';
import path from 'node:path';

export class RotatingFile {
  private readonly file: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private fd: number;
  private size: number;

  constructor(file: string, options: { maxBytes: number; maxFiles: number }) {
    this.file = file;
    this.maxBytes = options.maxBytes;
    this.maxFiles = options.maxFiles;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.fd = fs.openSync(file, 'a', 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** pino's destination interface. */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
    fs.writeSync(this.fd, line);
    this.size += bytes;
    return true;
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    fs.rmSync(`${this.file}.${this.maxFiles}`, { force: true });
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    }
    fs.renameSync(this.file, `${this.file}.1`);
    this.fd = fs.openSync(this.file, 'a', 0o600);
    this.size = 0;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
