import { readFile } from 'node:fs/promises';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export interface StaticFile {
  body: Buffer;
  contentType: string;
  /** Hashed build assets never change under their name. */
  immutable: boolean;
}

/**
 * The built single-page app (dist/console/web), read once and served from
 * memory: a small fixed set of files, so no path from a request ever reaches
 * the file system.
 */
export class StaticFiles {
  private constructor(private readonly files: Map<string, StaticFile>) {}

  static async load(root: string, names: string[]): Promise<StaticFiles> {
    const files = new Map<string, StaticFile>();
    for (const name of names) {
      const body = await readFile(path.join(root, name));
      files.set(`/${name}`, {
        body,
        contentType: TYPES[path.extname(name)] ?? 'application/octet-stream',
        immutable: name.startsWith('assets/'),
      });
    }
    return new StaticFiles(files);
  }

  /** A file by URL path; unknown paths get index.html (client-side routes). */
  get(urlPath: string): StaticFile | undefined {
    return this.files.get(urlPath) ?? (urlPath.startsWith('/assets/') ? undefined : this.files.get('/index.html'));
  }
}
