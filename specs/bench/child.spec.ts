/**
 * The bench's server wrapper: it must know the server's pid before it says the server is ready,
 * since stop() signals that pid; with none it once signalled pid 0, the whole process group,
 * and took CI's runner down with it (exit 143). The order of the two lines is a race between two
 * pipes, so it is tested on Readiness directly, not by hoping a real child loses it.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Readiness, ServerChild } from '../../bench/lib/child.ts';
import { alive } from '../helpers/child-process.ts';

const childModule = fileURLToPath(new URL('../../bench/lib/child.ts', import.meta.url));

t.test('ready only once both the pid and the listening line are in, in either order', async (t) => {
  const listening = 'listening on 127.0.0.1:9';
  // socat's order: its stderr line is read before the wrapper's pid line on stdout.
  const socatFirst = new Readiness(/listening on (\S+):(\d+)/);
  t.equal(socatFirst.feed(listening), undefined, 'not ready without the pid');
  t.equal(socatFirst.pid, 0);
  t.same(socatFirst.feed('bench-child-pid 4242'), { host: '127.0.0.1', port: 9 }, 'ready once the pid comes');
  t.equal(socatFirst.pid, 4242);
  // The usual order, with other lines between.
  const pidFirst = new Readiness(/listening on (\S+):(\d+)/);
  t.equal(pidFirst.feed('bench-child-pid 77'), undefined, 'not ready without the address');
  t.equal(pidFirst.feed('some log line'), undefined);
  t.same(pidFirst.feed(listening), { host: '127.0.0.1', port: 9 });
  t.equal(pidFirst.pid, 77);
});

t.test('a real server child: its pid is the server, and stop() ends only it', async (t) => {
  const server = await ServerChild.start({
    name: 'fast-stderr',
    args: [],
    command: ['sh', '-c', 'echo "listening on 127.0.0.1:9" >&2; exec sleep 30'],
  });
  t.ok(server.pid > 1, `the server's pid is known (${server.pid})`);
  const cmdline = (await readFile(`/proc/${server.pid}/cmdline`, 'utf8')).split('\0');
  t.ok(cmdline[0] === 'sh' || cmdline[0] === 'sleep', `the pid is the server's (${cmdline.join(' ')})`);
  await server.stop();
  t.notOk(alive(server.pid), 'the server is gone after stop()');
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
