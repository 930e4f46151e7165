// One progress line per destination, with a bar, counts, speed, ETA and state; the fastest is marked.
import type { DestinationStatus } from '../engine/destination.ts';
import { formatBytes, formatDuration } from './format.ts';

const BAR = 16;

function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.round((BAR * done) / total) : BAR;
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}]`;
}

/** The location of the destination moving fastest right now, if any is moving. */
export function fastest(destinations: readonly DestinationStatus[]): string | undefined {
  const moving = destinations.filter((d) => d.state !== 'detached' && d.speed > 0);
  return moving.sort((a, b) => b.speed - a.speed)[0]?.location;
}

export function destinationLines(destinations: readonly DestinationStatus[]): string[] {
  const best = destinations.length > 1 ? fastest(destinations) : undefined;
  const width = Math.max(...destinations.map((d) => d.location.length));
  return destinations.map((d) => {
    const total = d.bytesDone + d.bytesQueued;
    const eta = d.etaSeconds !== undefined ? ` ETA ${formatDuration(d.etaSeconds)}` : '';
    const tail = d.state === 'detached' ? ` detached: ${d.error}` : ` ${d.state}${d.location === best ? ' (fastest)' : ''}`;
    // Bytes count once an object is stored; the objects in flight show that a slow upload is moving.
    const inFlight = d.objectsInFlight > 0 && d.state !== 'detached' ? ` (${d.objectsInFlight} in flight)` : '';
    return `  ${d.location.padEnd(width)} ${bar(d.bytesDone, total)} ${d.objectsDone}/${d.objectsDone + d.objectsQueued} objects${inFlight} ${formatBytes(d.bytesDone)}/${formatBytes(total)} ${formatBytes(d.speed)}/s${eta}${tail}`;
  });
}
