/**
 * How `alphanet expose` and `alphanet forward` start, as real processes: expose says so when its
 * target is dead and runs anyway; forward binds its port before the relay answers and a TCP
 * client that connects early waits; a relay that is down at start is waited for (said once), and
 * one lost later is said in one log line without a stack.
 */
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { start, type Running } from '../helpers/child-process.ts';
import { freePort, startMain } from './relay-process.ts';
import { isolateClientConfig } from '../helpers/client-config.ts';
import { within } from '../helpers/wait.ts';

// The relays these specs start serve TLS (the CLI default); clients pin them in a config dir of their own.
isolateClientConfig(t);

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));
const WAIT_MS = 20_000;

function alphanet(t: Test, args: string[]): Running {
  const running = start(process.execPath, [BIN, ...args], { env: { ...process.env, ALPHANET_RELAY: '', ALPHANET_LOG_LEVEL: 'info' } });
  t.teardown(() => void running.child.kill('SIGKILL'));
  return running;
}

/** The JSON log lines on stderr. */
function logLines(running: Running): Record<string, unknown>[] {
  return running
    .output()
    .stderr.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Resolves once stderr has a log line with this message. */
function logged(running: Running, msg: string): Promise<Record<string, unknown>> {
  return within(
    `the log line "${msg}"`,
    new Promise<Record<string, unknown>>((resolve) => {
      const check = (): void => {
        const line = logLines(running).find((l) => l.msg === msg);
        if (line) resolve(line);
      };
      running.child.stderr?.on('data', check);
      check();
    }),
    WAIT_MS,
  );
}

async function tempDb(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-tunnel-start-'));
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return path.join(dir, 'db.json');
}

async function stopWithSigint(running: Running): Promise<number | null> {
  running.child.kill('SIGINT');
  return (await running.exited(WAIT_MS)).code;
}

t.test('expose warns once at start that its target does not answer, and keeps serving', async (t) => {
  const relay = startMain(['--port', '0', '--db', await tempDb(t)]);
  t.teardown(() => void relay.child.kill('SIGKILL'));
  const address = await within('relay listening', relay.listening, WAIT_MS);
  const dead = await freePort();
  const exposing = alphanet(t, ['expose', '--relay', address, '--local-address', '127.0.0.2', '80', `127.0.0.1:${dead}`]);
  await exposing.waitFor(/^exposing \S+:80 -> 127\.0\.0\.1:\d+\n/, WAIT_MS);
  const warning = logLines(exposing).filter((l) => l.msg === 'the target does not answer a TCP connect; exposing it anyway (connections are refused until it does)');
  t.equal(warning.length, 1, 'said once, before the ready line');
  t.match(warning[0], { level: 40, target: `127.0.0.1:${dead}`, reason: `ERR_TARGET_UNREACHABLE: cannot connect to the target: ECONNREFUSED: connection refused 127.0.0.1:${dead}` });
  t.equal(exposing.child.exitCode, null, 'still running');
  t.equal(await stopWithSigint(exposing), 0);
});

t.test('the probe of a live target is one empty connection, closed with a FIN', async (t) => {
  const relay = startMain(['--port', '0', '--db', await tempDb(t)]);
  t.teardown(() => void relay.child.kill('SIGKILL'));
  const address = await within('relay listening', relay.listening, WAIT_MS);
  const seen: Array<{ bytes: number; ended: boolean }> = [];
  const target = net.createServer((socket) => {
    const entry = { bytes: 0, ended: false };
    seen.push(entry);
    socket.on('data', (chunk: Buffer) => (entry.bytes += chunk.length));
    socket.on('end', () => (entry.ended = true));
    socket.on('error', () => {});
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  t.teardown(() => void target.close());
  const exposing = alphanet(t, ['expose', '--relay', address, '--local-address', '127.0.0.2', '80', `127.0.0.1:${(target.address() as net.AddressInfo).port}`]);
  await exposing.waitFor(/^exposing /, WAIT_MS);
  t.same(seen, [{ bytes: 0, ended: true }], 'one connection, no byte, ended cleanly before the ready line');
  t.notOk(exposing.output().stderr.includes('does not answer'), 'no warning for a live target');
  t.equal(await stopWithSigint(exposing), 0);
});

t.test('forward binds before its relay is up, waits for it (said once), and an early TCP client gets through', async (t) => {
  const db = await tempDb(t);
  // A first relay run gives the exposing machine its permanent virtual IP, then goes down.
  const first = startMain(['--port', '0', '--db', db]);
  t.teardown(() => void first.child.kill('SIGKILL'));
  const address = await within('first relay listening', first.listening, WAIT_MS);
  const echo = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  t.teardown(() => void echo.close());
  const exposing = alphanet(t, ['expose', '--relay', address, '--local-address', '127.0.0.2', '7', `127.0.0.1:${(echo.address() as net.AddressInfo).port}`]);
  const virtualIp = (await exposing.waitFor(/^exposing (\S+):7 /, WAIT_MS))[1];
  first.child.kill('SIGTERM');
  await within('first relay to stop', first.exited, WAIT_MS);

  // Lost later: one line, with the code, without a stack.
  const lost = await logged(exposing, 'lost the relay');
  t.match(lost, { level: 40, err: { code: 'ERR_RELAY_LOST' } });
  t.notOk('stack' in (lost.err as object), 'no stack trace for an expected loss');
  t.equal(exposing.output().stderr.split('\n').filter((l) => l.includes('lost the relay')).length, 1, 'one line');

  // Down at start: forward still binds and says it waits.
  const forwarding = alphanet(t, ['forward', '--relay', address, '--local-address', '127.0.0.3', '0', `${virtualIp}:7`]);
  const port = Number((await forwarding.waitFor(/^forwarding 127\.0\.0\.1:(\d+) /, WAIT_MS))[1]);
  await logged(forwarding, 'cannot reach the relay; dialling again with backoff until it answers');
  const early = net.connect({ host: '127.0.0.1', port });
  early.on('error', () => {});
  await within('a TCP connect to the forward while the relay is down', once(early, 'connect'), WAIT_MS);
  early.write('early bird');
  let echoed = '';
  early.setEncoding('utf8').on('data', (chunk: string) => (echoed += chunk));
  const earlyOver = new Promise<void>((resolve) => early.once('close', () => resolve()));

  // expose started while the relay is down waits for it the same way, ready once it answers.
  const lateExpose = alphanet(t, ['expose', '--relay', address, '--local-address', '127.0.0.4', '8', `127.0.0.1:${(echo.address() as net.AddressInfo).port}`]);
  await logged(lateExpose, 'cannot reach the relay; dialling again with backoff until it answers');
  t.equal(lateExpose.output().stdout, '', 'no ready line while the relay is down');

  // The relay comes back on the same address: forward connects, expose reconnects.
  const second = startMain(['--port', address.split(':')[1] as string, '--db', db]);
  t.teardown(() => void second.child.kill('SIGKILL'));
  await within('second relay listening', second.listening, WAIT_MS);
  const relayBack = Date.now();
  // The early connection waited for the relay. Whether expose is back at the relay when it goes
  // through is a race between two backoffs: it is echoed, or refused because the target is not
  // back yet; never refused for want of a relay.
  await within(
    'the early connection to be carried or refused once the relay is up',
    new Promise<void>((resolve) => {
      const check = (): void => (echoed === 'early bird' ? resolve() : void early.once('data', check));
      check();
      void earlyOver.then(() => resolve());
    }),
    WAIT_MS,
  );
  if (echoed !== 'early bird') {
    const refusal = logLines(forwarding).find((l) => l.msg === 'connection refused');
    t.match(refusal, { reason: /^ERR_(TARGET_OFFLINE|NOT_LISTENING):/ }, 'refused only because the target was not back yet');
    t.ok(Number(refusal?.time) >= relayBack - 1_000, 'and only after the relay was back');
  } else {
    t.pass('the early bytes were echoed');
  }
  early.destroy();

  // Once expose is back, a connection goes through end to end.
  await logged(exposing, 'reconnected to relay');
  let answer = '';
  for (let attempt = 0; attempt < 20 && answer !== 'late'; attempt++) {
    const late = net.connect({ host: '127.0.0.1', port });
    late.on('error', () => {});
    late.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    late.end('late');
    await within('a connection through the forward to end', once(late, 'close'), WAIT_MS);
  }
  t.equal(answer, 'late', 'carried both ways once both ends are back');
  const waits = logLines(forwarding).filter((l) => l.msg === 'cannot reach the relay; dialling again with backoff until it answers');
  t.equal(waits.length, 1, 'the wait is said once, not once per attempt');
  t.match(waits[0], { level: 40, relay: address, reason: /ERR_RELAY_UNREACHABLE/ });
  await lateExpose.waitFor(/^exposing \S+:8 -> /, WAIT_MS);
  t.equal(logLines(lateExpose).filter((l) => l.msg === 'cannot reach the relay; dialling again with backoff until it answers').length, 1, 'expose said its wait once too');
  t.equal(await stopWithSigint(lateExpose), 0);
  t.equal(await stopWithSigint(forwarding), 0);
  t.equal(await stopWithSigint(exposing), 0);
});
