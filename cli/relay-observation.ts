/**
 * What the relay command's observation flags (`--http-port`, `--inspect`) add to `runRelay`:
 * hooks that start the HTTP server and the inspector stream, and print `dashboard on URL`.
 */
import { createRelayObservation } from '../observe/index.ts';
import { combineInspect, createWebSocketInspection, type WebSocketInspection } from '../observe/inspect.ts';
import type { RelayOptions } from '../actors/relay/index.ts';
import type { ObserveCliOptions } from './relay-options.ts';
import type { RunRelayHooks } from './run-relay.ts';

/**
 * Hooks for `runRelay` that add observation per the flags, layered over `hooks`. With neither
 * flag the hooks are returned unchanged, so a plain relay carries no observation cost at all.
 */
export function withObservation(cli: ObserveCliOptions, hooks: RunRelayHooks = {}): RunRelayHooks {
  if (cli.httpPort === undefined && cli.inspect === undefined) return hooks;
  const observation = createRelayObservation({});
  // The inspector stream is made here, not by createRelayObservation, so that it logs through
  // the relay's logger whether it reaches the inspector (the logger exists only once runRelay runs).
  let inspection: WebSocketInspection | undefined;
  return {
    ...hooks,
    onStoreWrite: (info) => {
      observation.onStoreWrite(info);
      hooks.onStoreWrite?.(info);
    },
    relayOptions: async (options) => {
      const base: RelayOptions = hooks.relayOptions ? await hooks.relayOptions(options) : options;
      if (cli.inspect !== undefined) inspection = createWebSocketInspection({ url: cli.inspect, logger: base.logger });
      return { ...base, inspect: combineInspect(observation.inspect, inspection?.inspect, base.inspect) };
    },
    afterStart: async (running) => {
      const server = await observation.attach(running.relay, { port: cli.httpPort, host: cli.httpHost, logger: running.logger, ...cli.bounds });
      if (server) {
        running.logger.info({ url: server.url }, `dashboard on ${server.url}/`);
        // On stdout too, before `listening on`: with --http-port 0 it is the only way to learn the port.
        (hooks.stdout ?? process.stdout).write(`dashboard on ${server.url}/\n`);
      }
      await hooks.afterStart?.(running);
    },
    beforeStop: async (running) => {
      await hooks.beforeStop?.(running);
      inspection?.stop();
      await observation.close();
    },
  };
}
