/**
 * The parent of many short-lived actors of one owner (a relay's connection, pair and status
 * actors; a client's socket actors), so they share one actor system: a root XState actor makes a
 * system of its own (a scheduler, registries, a dozen closures), ~2 KB and its CPU for every
 * connection. Create it with the owner's `inspect` and `clock`; children take it as `parent`.
 *
 * It ignores its children's done events. An error in a child is thrown from a timer, as xstate
 * throws a root actor's unhandled error, so a failing child is as loud as when it was a root.
 */
import { fromTransition } from 'xstate';

export const childrenParentLogic = fromTransition((state: null, event: { type: string; error?: unknown }) => {
  if (event.type.startsWith('xstate.error.actor')) {
    setTimeout(() => {
      throw event.error;
    });
  }
  return state;
}, null);
