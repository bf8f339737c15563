/**
 * The bench's server wrapper: it must know the server's pid before it says the server is ready,
 * since stop() signals that pid; with none it once signalled pid 0, the whole process group,
 * and took CI's runner down with it (exit 143).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ServerChild } from '../../bench/lib/child.ts';
import { alive } from '../helpers/child-process.ts';

const childModule = fileURLToPath(new URL('../../bench/lib/child.ts', import.meta.url));

t.test('a server that says it is ready on stderr at once is known by its pid, and stop() ends only it', async (t) => {
  for (let i = 0; i < 10; i++) {
    // Like socat: the ready line goes to stderr, and before bash has echoed the pid.
    const server = await ServerChild.start({
      name: `fast-stderr ${i}`,
      args: [],
      command: ['sh', '-c', 'echo "listening on 127.0.0.1:9" >&2; exec sleep 30'],
    });
    t.ok(server.pid > 1, `run ${i}: the server's pid is known (${server.pid})`);
    const cmdline = (await readFile(`/proc/${server.pid}/cmdline`, 'utf8')).split('\0');
    t.ok(cmdline[0] === 'sh' || cmdline[0] === 'sleep', `run ${i}: the pid is the server's (${cmdline.join(' ')})`);
    await server.stop();
    t.notOk(alive(server.pid), `run ${i}: the server is gone after stop()`);
  }
  t.ok(alive(process.pid), 'the test runner is still here');
});

// Only pid 0 is tried: a regression with -1 would signal every process this user may signal.
t.test('signal(0) does not send to its own process group', async (t) => {
  // In a process group of its own, so the old behaviour (kill(0) = the group) ends only it.
  const run = spawn(
    process.execPath,
    ['--import', 'tsx', '-e', `import { signal } from ${JSON.stringify(childModule)}; signal(0, 'SIGTERM'); setTimeout(() => console.log('still alive'), 300);`],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  run.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  run.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code, sig] = (await once(run, 'exit')) as [number | null, NodeJS.Signals | null];
  t.equal(sig, null, `the process was not signalled (${out})`);
  t.equal(code, 0);
  t.match(out, /still alive/);
});
