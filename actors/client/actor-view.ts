/**
 * What scripts see of the client's actors: a read-only view (snapshot and subscription) and the
 * state's full name. The actors themselves stay private, so only the client drives its
 * machines: a script that could `send()` could push a relay answer or a SocketEnd that never
 * happened (issue 15). Inspection does not need the handles: it uses the `inspect` option.
 */
import type { AnyActorRef, Observer, SnapshotFrom, StateValue, Subscription } from 'xstate';

/** A read-only view of one of the client's actors. */
export interface ActorView<TSnapshot> {
  /** The actor's id, as inspection events name it. */
  readonly id: string;
  /** The current snapshot: `value`, `context`, `status`, `matches()`, `hasTag()`. */
  getSnapshot(): TSnapshot;
  /** Called with every new snapshot, and once when the actor stops (`complete`) or fails (`error`). */
  subscribe(observer: Observer<TSnapshot>): Subscription;
  subscribe(next?: (snapshot: TSnapshot) => void, error?: (error: unknown) => void, complete?: () => void): Subscription;
}

/** One view per actor, so views compare equal exactly when their actors do. */
const views = new WeakMap<AnyActorRef, ActorView<unknown>>();

/** The read-only view of `actor` (the same object on every call). */
export function viewOf<TActor extends AnyActorRef>(actor: TActor): ActorView<SnapshotFrom<TActor>> {
  let view = views.get(actor);
  if (view === undefined) {
    view = Object.freeze({
      id: actor.id,
      getSnapshot: () => actor.getSnapshot(),
      subscribe: actor.subscribe.bind(actor),
    });
    views.set(actor, view);
  }
  return view as ActorView<SnapshotFrom<TActor>>;
}

/**
 * The state's full name: `connected`, or `connected.writeEnded` for a nested state (the machines
 * here have no parallel states, so one path names the state).
 */
export function stateName(value: StateValue): string {
  let name = '';
  let v: StateValue | undefined = value;
  while (v !== undefined) {
    if (typeof v === 'string') return name + v;
    const key: string | undefined = Object.keys(v)[0];
    if (key === undefined) break;
    name += `${key}.`;
    v = v[key];
  }
  return name.slice(0, -1);
}
