import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/** Reads all of stdin (for piped secrets), trimming one trailing newline. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * Asks for a secret on the terminal without echoing it. Secrets never come
 * from argv by default: argv is visible to every user of the machine.
 */
export async function promptSecret(question: string): Promise<string> {
  let muted = false;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: out, terminal: true });
  process.stderr.write(question);
  muted = true;
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return answer;
}

/** Plain visible prompt (settings, names). */
export async function promptLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
  rl.close();
  return answer;
}

/** Secret input: the terminal prompt when interactive, stdin otherwise. */
export async function readSecret(question: string): Promise<string> {
  return process.stdin.isTTY ? promptSecret(question) : readStdin();
}
