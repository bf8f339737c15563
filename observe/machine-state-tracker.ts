/**
 * Which states the relay's live machine actors are in, for the dashboard's highlights. Counts
 * are kept per inspection event (O(what changed)), so reading them costs the number of states,
 * not the number of actors: with 131k socket pairs a status read must not walk every actor.
 */
import type { InspectionEvent } from 'xstate';
import { activeStateIds } from './state-diagram.ts';

/** Live actors of one machine and how many are in each state. */
export interface MachineOccupancy {
  /** Live actors of this machine. */
  actors: number;
  /** State id (e.g. `socketPair.active.open`) → live actors in it, parents included. */
  states: Record<string, number>;
}

/** Actors checked for an outside stop per read of {@link MachineStateTracker.occupancy}. */
export const STOPPED_SWEEP_PER_READ = 256;

interface TrackedActor {
  machineId: string;
  value: unknown;
  ids: readonly string[];
  ref: unknown;
}

interface MachineCounts {
  actors: number;
  states: Map<string, number>;
}

/** Reads the logic's machine id without depending on xstate's internal actor class. */
function machineIdOf(actorRef: unknown): string | undefined {
  const logic = (actorRef as { logic?: { id?: unknown; config?: unknown } }).logic;
  return logic && typeof logic.id === 'string' && logic.config ? logic.id : undefined;
}

/**
 * xstate v5 emits no inspection event when a running actor is stopped from outside, so the
 * tracker also asks the actor: a stopped actor's processing status is 2 (ProcessingStatus.Stopped).
 */
function isStopped(actorRef: unknown): boolean {
  return (actorRef as { _processingStatus?: number })._processingStatus === 2;
}

/** Keeps each live machine actor's current state and running counts per machine and state. */
export class MachineStateTracker {
  readonly #actors = new Map<string, TrackedActor>();
  readonly #counts = new Map<string, MachineCounts>();
  #sweep: Iterator<[string, TrackedActor]> | undefined;

  /** The inspect callback to hand to actors. */
  readonly inspect = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot' && event.type !== '@xstate.actor') return;
    const ref = event.actorRef;
    const machineId = machineIdOf(ref);
    if (!machineId) return;
    // Registration comes from the actor's constructor, before it has a snapshot.
    const snapshot = (event.type === '@xstate.snapshot' ? event.snapshot : ref.getSnapshot()) as
      | { status?: string; value?: unknown }
      | undefined;
    if (!snapshot) return;
    const previous = this.#actors.get(ref.sessionId);
    if (snapshot.status !== undefined && snapshot.status !== 'active') {
      if (previous) this.#forget(ref.sessionId, previous);
      return;
    }
    if (previous && previous.value === snapshot.value) return;
    if (previous) this.#count(previous, -1);
    const actor: TrackedActor = { machineId, value: snapshot.value, ids: activeStateIds(machineId, snapshot.value), ref };
    this.#actors.set(ref.sessionId, actor);
    this.#count(actor, 1);
  };

  /** The state value of a live actor by its session id. */
  valueOf(sessionId: string): unknown {
    return this.#actors.get(sessionId)?.value;
  }

  /** Per machine id: live actors and how many are in each state. */
  occupancy(): Record<string, MachineOccupancy> {
    this.#sweepStopped();
    const out: Record<string, MachineOccupancy> = {};
    for (const [machineId, counts] of this.#counts) {
      if (counts.actors === 0) continue;
      const states: Record<string, number> = {};
      for (const [id, n] of counts.states) states[id] = n;
      out[machineId] = { actors: counts.actors, states };
    }
    return out;
  }

  #count(actor: TrackedActor, delta: 1 | -1): void {
    let counts = this.#counts.get(actor.machineId);
    if (!counts) this.#counts.set(actor.machineId, (counts = { actors: 0, states: new Map() }));
    counts.actors += delta;
    for (const id of actor.ids) {
      const n = (counts.states.get(id) ?? 0) + delta;
      if (n > 0) counts.states.set(id, n);
      else counts.states.delete(id);
    }
  }

  #forget(sessionId: string, actor: TrackedActor): void {
    this.#actors.delete(sessionId);
    this.#count(actor, -1);
  }

  /** Checks a bounded slice of actors per read, resuming where the last read stopped. */
  #sweepStopped(): void {
    for (let checked = 0; checked < STOPPED_SWEEP_PER_READ && checked < this.#actors.size; checked++) {
      this.#sweep ??= this.#actors.entries();
      const next = this.#sweep.next();
      if (next.done) {
        this.#sweep = undefined;
        continue;
      }
      const [sessionId, actor] = next.value;
      if (isStopped(actor.ref)) this.#forget(sessionId, actor);
    }
  }
}
