// Progress for long runs: a single redrawn line with rate and ETA on a TTY, plain timestamped lines otherwise
// (at most one every `intervalS` seconds, so logs stay readable).

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Minimum seconds between plain (non-TTY) lines. */
  intervalS?: number;
  unit?: string;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly intervalS: number;
  private readonly unit: string;
  private start = performance.now();
  private lastLine = 0;
  private label = "";
  private total = 0;
  private done = 0;
  private initial = 0;

  constructor(o: ProgressOptions = {}) {
    this.stream = o.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY) && process.env.CI !== "true";
    this.intervalS = o.intervalS ?? 10;
    this.unit = o.unit ?? "items";
  }

  /** Starts a stage: `label` describes it, `total` counts its items, `done` were finished earlier (a resumed run). */
  stage(label: string, total: number, done = 0): void {
    this.label = label;
    this.total = total;
    this.done = done;
    this.initial = done;
    this.start = performance.now();
    this.lastLine = 0;
    this.render(true);
  }

  tick(n = 1): void {
    this.done += n;
    this.render(this.done >= this.total);
  }

  /** A message that stays (printed above the live line on a TTY). */
  log(msg: string): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${msg}\n`);
    else this.stream.write(`[${new Date().toISOString()}] ${msg}\n`);
    if (this.tty && this.total) this.render(true);
  }

  end(): void {
    if (this.tty) this.stream.write("\r\x1b[2K");
  }

  private render(force: boolean): void {
    const now = performance.now();
    if (!this.tty && !force && (now - this.lastLine) / 1000 < this.intervalS) return;
    if (this.tty && !force && now - this.lastLine < 100) return;
    this.lastLine = now;
    const el = (now - this.start) / 1000;
    const rate = el > 0 ? (this.done - this.initial) / el : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    const line = `${this.label} ${this.done}/${this.total} ${this.unit} | ${rate.toFixed(2)} ${this.unit}/s | ETA ${formatDuration(eta)}`;
    if (this.tty) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(`[${new Date().toISOString()}] ${line}\n`);
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "--";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
