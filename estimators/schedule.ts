// Temperature schedules: τ as a function of the training step, wherever τ is a number.

/** τ as a function of the step (0-based), with the text it was parsed from. */
export interface TauSchedule {
  /** τ at this step (positive, finite). */
  at(step: number): number;
  /** The schedule's text form (see {@link tauSchedule}); for a plain number, the number. */
  readonly spec: string;
}

const SCHEDULE_HELP = "a positive number, 'const:TAU', 'exp:START:FLOOR:RATE' (τ = max(FLOOR, START·exp(−RATE·step))) or 'linear:START:END:STEPS'";

/**
 * Parse a temperature schedule.
 * - `0.5` or `const:0.5`: constant
 * - `exp:START:FLOOR:RATE`: τ(step) = max(FLOOR, START · exp(−RATE · step)), Jang et al. (2017)'s annealing
 *   (they use START 1, FLOOR 0.5, RATE 1e-5 to 1e-4, updated every 1000 steps; here every step)
 * - `linear:START:END:STEPS`: from START to END over STEPS steps, END afterwards
 * @param spec - the text, e.g. `exp:1.0:0.5:1e-4`
 * @param what - the argument's name for errors (default `tau`)
 */
export function tauSchedule(spec: string | number, what = 'tau'): TauSchedule {
  const bad = (why: string) => new Error(`${what}: ${why}; got '${spec}', expected ${SCHEDULE_HELP}`);
  const pos = (s: string, name: string, zeroOk = false) => {
    const v = Number(s);
    if (s.trim() === '' || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) throw bad(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} finite number`);
    return v;
  };
  if (typeof spec === 'number') spec = String(spec);
  if (typeof spec !== 'string') throw bad('not a string');
  const parts = spec.split(':');
  if (parts.length === 1) { const t = pos(parts[0], 'tau'); return { at: () => t, spec }; }
  switch (parts[0]) {
    case 'const': {
      if (parts.length !== 2) throw bad('const takes one value');
      const t = pos(parts[1], 'tau');
      return { at: () => t, spec };
    }
    case 'exp': {
      if (parts.length !== 4) throw bad('exp takes START:FLOOR:RATE');
      const start = pos(parts[1], 'START'), floor = pos(parts[2], 'FLOOR'), rate = pos(parts[3], 'RATE', true);
      return { at: (step) => Math.max(floor, start * Math.exp(-rate * step)), spec };
    }
    case 'linear': {
      if (parts.length !== 4) throw bad('linear takes START:END:STEPS');
      const start = pos(parts[1], 'START'), end = pos(parts[2], 'END'), steps = pos(parts[3], 'STEPS');
      return { at: (step) => (step >= steps ? end : start + ((end - start) * step) / steps), spec };
    }
    default:
      throw bad(`unknown schedule '${parts[0]}'`);
  }
}

/**
 * τ at a step from a number, a {@link TauSchedule} or a function of the step; throws unless positive and finite.
 * @param tau - the temperature or schedule (default 1)
 * @param step - the step (default 0)
 */
export function tauAt(tau: number | TauSchedule | ((step: number) => number) | undefined, step = 0): number {
  const t = tau === undefined ? 1 : typeof tau === 'number' ? tau : typeof tau === 'function' ? tau(step) : tau.at(step);
  if (!(t > 0) || !Number.isFinite(t)) throw new Error(`estimators.sample: tau must be a positive finite number${typeof tau === 'number' ? '' : ` (a schedule gave it at step ${step})`}, got ${t}`);
  return t;
}
