/** The relay command as a real child process (`node --import tsx cli/relay-main.ts …`), for CLI specs. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RelayProcess {
  child: ChildProcessWithoutNullStreams;
  /** `HOST:PORT` from the `listening on` line; rejects if the process exits first. */
  listening: Promise<string>;
  /** [code, signal] once the process has exited and its pipes are closed. */
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  output(): { stdout: string; stderr: string };
}

export function startMain(args: string[], env: Record<string, string> = {}): RelayProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/relay-main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ALPHANET_LOG_LEVEL: 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // 'close', not 'exit': stderr may still hold data when the process has exited (pipes a spec destroyed count as closed).
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      // The address, then how it is served: `(TLS, fingerprint sha256:…)` or `(plaintext)`.
      const m = /listening on (\S+)(?: \([^)\n]*\))?\n/.exec(stdout);
      if (m) resolve(m[1] as string);
    });
    void exited.then(() => reject(new Error(`exited before listening: ${stderr}`)));
  });
  // Specs of failed starts never listen; they await `exited` instead.
  listening.catch(() => {});
  return { child, listening, exited, output: () => ({ stdout, stderr }) };
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picked it). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** True when something can listen on 127.0.0.1:`port` now (so nothing holds it). */
export async function canListen(port: number): Promise<boolean> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
