/**
 * Opening a JetStream KV bucket that several relays may create at the same instant. Kvm.create
 * is idempotent for one caller, but two creates racing on a fresh server make the loser fail
 * with "subjects overlap with an existing stream" (or "stream name already in use"): the bucket
 * then exists, and creating it again opens it. Three relays started together on a new NATS hit
 * this (specs/storage/nats-kv-store.spec.ts, "at the same instant").
 */
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/** Attempts after the first when a racing create loses. */
const CREATE_RETRIES = 5;

function lostCreateRace(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /subjects overlap|already in use/i.test(message);
}

/** Creates the bucket or opens the one a concurrent relay just created. */
export async function openBucket(connection: NatsConnection, name: string, options: Partial<KvOptions>): Promise<KV> {
  const kvm = new Kvm(jetstream(connection));
  for (let attempt = 0; ; attempt++) {
    try {
      return await kvm.create(name, options);
    } catch (error) {
      if (attempt >= CREATE_RETRIES || !lostCreateRace(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * (attempt + 1)));
    }
  }
}
