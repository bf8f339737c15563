/**
 * Describes the machine a run was taken on, printed above the results so figures are never
 * read without their context (issue 6).
 */
import os from 'node:os';
import { aeadBackend } from '../../actors/client/e2e/native-aead.ts';

/** The facts printed with every run. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  nodeVersion: string;
  platform: string;
  totalMemoryMiB: number;
  loadAverage: number[];
  /** Who seals and opens the e2e records in this process and the clients it starts. */
  e2eAead: string;
}

/** Reads CPU model, core count, Node version and load from the running host. */
export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    nodeVersion: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    totalMemoryMiB: Math.round(os.totalmem() / (1024 * 1024)),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    e2eAead: aeadBackend().name === 'native' ? 'native OpenSSL EVP (native/aead)' : `node:crypto (${aeadBackend().detail})`,
  };
}
