import { createInterface } from 'node:readline';
import { SetupError } from './fatal.js';

// The password of `tessera users create`: asked for twice without echo on a terminal;
// from a pipe, one line, or two equal lines (`printf 'pw\npw\n' | tessera users create …`
// answers both prompts). Never "all of stdin": a newline is never part of a password.

/** More than any password (72 bytes) typed twice: a file piped in by mistake is refused, not buffered. */
const MAX_INPUT_BYTES = 4096;

/**
 * The password in piped input: the first line, confirmed by the second when there is one.
 * A line ends with LF or CRLF; a CR anywhere else, a third line, a mismatch or no line at all
 * is refused (SetupError), so the password set is never something other than what was meant.
 */
export function passwordFromPipedInput(input: string): string {
  if (input === '') throw new SetupError('no password on stdin: pipe it as one line (or twice, on two lines)');
  const lines = input.split('\n');
  // A final line break ends the last line; it does not start another.
  if (lines[lines.length - 1] === '') lines.pop();
  const [password = '', confirmation, ...more] = lines.map((l) => l.replace(/\r$/, ''));
  if (more.length) throw new SetupError('stdin has more than two lines: give the password on one line, or on two equal lines (password, then confirmation)');
  if (password.includes('\r') || confirmation?.includes('\r')) {
    throw new SetupError('the password contains a carriage return; a password is one line of text');
  }
  if (password === '') throw new SetupError('the password on stdin is empty');
  if (confirmation !== undefined && confirmation !== password) throw new SetupError('the two passwords differ');
  return password;
}

async function readPipe(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > MAX_INPUT_BYTES) throw new SetupError(`stdin is longer than ${MAX_INPUT_BYTES} bytes; pipe the password as one line (or twice, on two lines)`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function askTwice(): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  const ask = (q: string) =>
    new Promise<string>((resolve, reject) => {
      process.stdout.write(q);
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
      // Ctrl-D closes the prompt without an answer.
      const onClose = () => reject(new SetupError('no password given'));
      rl.once('close', onClose);
      rl.question('', (answer) => {
        rl.off('close', onClose);
        process.stdout.write('\n');
        resolve(answer);
      });
    });
  try {
    const first = await ask('Password: ');
    const again = await ask('Repeat it: ');
    if (first !== again) throw new SetupError('the two passwords differ');
    if (first === '') throw new SetupError('the password is empty');
    return first;
  } finally {
    rl.close();
  }
}

/** The password: asked for twice without echo on a terminal, else read from stdin (see passwordFromPipedInput). */
export async function readPassword(): Promise<string> {
  return process.stdin.isTTY ? askTwice() : passwordFromPipedInput(await readPipe(process.stdin));
}
