// Dependency-free progress reporting.
//
// On a TTY: one line, redrawn in place with '\r', showing a bar, count,
// rate, ETA and the latest info values (e.g. running loss).
// Otherwise (logs, pipes, CI): plain lines, emitted at most every
// `intervalMs` or whenever another 10% of the total is reached.

export type ProgressStream = {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
};

export type ProgressInfo = Record<string, number | string>;

export type ProgressOptions = {
  /** Total number of steps; 0/undefined means unknown (no bar, no ETA). */
  total?: number;
  label?: string;
  stream?: ProgressStream;
  /** Unit name for the rate, default 'steps' (shown as steps/s). */
  unit?: string;
  /** Non-TTY: minimum milliseconds between plain lines. Default 10000. */
  intervalMs?: number;
  /** TTY: minimum milliseconds between redraws. Default 100. */
  redrawMs?: number;
  /** Clock in milliseconds (injectable for tests). */
  now?: () => number;
};

export type Progress = {
  tick(n?: number, info?: ProgressInfo): void;
  done(summary?: string | ProgressInfo): void;
};

export function formatValue(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function formatRate(r: number): string {
  if (!Number.isFinite(r)) return '-';
  if (r >= 100) return r.toFixed(0);
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(2);
}

function formatInfo(info: ProgressInfo): string {
  return Object.entries(info)
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
}

export function createProgress(opts: ProgressOptions = {}): Progress {
  const stream: ProgressStream = opts.stream ?? process.stderr;
  const total = opts.total && opts.total > 0 ? opts.total : 0;
  const label = opts.label ?? '';
  const unit = opts.unit ?? 'steps';
  const intervalMs = opts.intervalMs ?? 10_000;
  const redrawMs = opts.redrawMs ?? 100;
  const now = opts.now ?? (() => performance.now());
  const tty = stream.isTTY === true;

  const start = now();
  let count = 0;
  let info: ProgressInfo = {};
  let lastPrint = -Infinity;
  let lastDecile = 0;
  let finished = false;
  let drewTTY = false;

  const elapsedS = () => Math.max(0, (now() - start) / 1000);
  const rate = () => {
    const e = elapsedS();
    return e > 0 ? count / e : NaN;
  };

  function statusText(withBar: boolean): string {
    const parts: string[] = [];
    if (label) parts.push(label);
    const r = rate();
    if (total > 0) {
      const frac = Math.min(1, count / total);
      if (withBar) {
        const width = 24;
        const filled = Math.round(frac * width);
        parts.push(`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`);
      }
      parts.push(`${count}/${total}`, `${(frac * 100).toFixed(1)}%`);
      parts.push(`${formatRate(r)} ${unit}/s`);
      const eta = r > 0 ? (total - count) / r : NaN;
      parts.push(`ETA ${formatDuration(eta)}`);
    } else {
      parts.push(`${count} ${unit}`, `${formatRate(r)} ${unit}/s`);
    }
    parts.push(`elapsed ${formatDuration(elapsedS())}`);
    const i = formatInfo(info);
    if (i) parts.push(i);
    return parts.join(' ');
  }

  function drawTTY(): void {
    let line = statusText(true);
    const cols = stream.columns && stream.columns > 10 ? stream.columns : 0;
    if (cols && line.length > cols - 1) line = line.slice(0, cols - 1);
    stream.write(`\r${line}\x1b[K`);
    drewTTY = true;
  }

  return {
    tick(n = 1, newInfo?: ProgressInfo): void {
      if (finished) return;
      count += n;
      if (newInfo) info = { ...info, ...newInfo };
      const t = now();
      if (tty) {
        if (t - lastPrint >= redrawMs || (total > 0 && count >= total)) {
          lastPrint = t;
          drawTTY();
        }
        return;
      }
      const decile = total > 0 ? Math.floor((Math.min(count, total) * 10) / total) : 0;
      const due = lastPrint === -Infinity ? t - start >= intervalMs : t - lastPrint >= intervalMs;
      if (due || decile > lastDecile) {
        lastPrint = t;
        lastDecile = Math.max(lastDecile, decile);
        stream.write(`${statusText(false)}\n`);
      }
    },
    done(summary?: string | ProgressInfo): void {
      if (finished) return;
      finished = true;
      const e = elapsedS();
      const extra = summary === undefined ? '' : typeof summary === 'string' ? summary : formatInfo(summary);
      if (tty && drewTTY) {
        drawTTY();
        stream.write('\n');
      }
      const head = label ? `${label} done` : 'done';
      const counts = total > 0 ? `${count}/${total}` : `${count}`;
      const line = `${head}: ${counts} ${unit} in ${formatDuration(e)} (${formatRate(rate())} ${unit}/s)`;
      stream.write(`${line}${extra ? ` ${extra}` : ''}\n`);
    },
  };
}
