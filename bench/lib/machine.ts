/**
 * Describes the machine a run was taken on, printed above the results so figures are never
 * read without their context (issue 6).
 */
import os from 'node:os';

/** The facts printed with every run. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  nodeVersion: string;
  platform: string;
  totalMemoryMiB: number;
  loadAverage: number[];
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
  };
}
