import { Injectable } from '@nestjs/common';
import { FleetStore, type FleetSnapshot } from '@kernelfleet/store';

/** Rows of a list the page shows before saying "and N more". */
const SHOWN_SESSIONS = 100;
const SHOWN_RUNNING = 100;
/** Terminal executions of this window give the p50/p99 timings. */
const TIMING_WINDOW_MS = 5 * 60_000;
/** Any number of open pages cost one snapshot per replica per this long. */
const SNAPSHOT_REUSE_MS = 500;

/** The fleet page's data (/admin/fleet.json): one snapshot shared by every viewer for half a second. */
@Injectable()
export class FleetDashboardService {
  private latest?: { at: number; snapshot: Promise<FleetSnapshot> };

  constructor(private readonly store: FleetStore) {}

  snapshot(): Promise<FleetSnapshot> {
    const now = Date.now();
    if (!this.latest || now - this.latest.at >= SNAPSHOT_REUSE_MS) {
      const snapshot = this.store.monitor.snapshot({ sessions: SHOWN_SESSIONS, running: SHOWN_RUNNING, timingWindowMs: TIMING_WINDOW_MS }, now);
      // A failed read (Redis down) is not reused: the next request tries again.
      snapshot.catch(() => {
        if (this.latest?.snapshot === snapshot) this.latest = undefined;
      });
      this.latest = { at: now, snapshot };
    }
    return this.latest.snapshot;
  }
}
