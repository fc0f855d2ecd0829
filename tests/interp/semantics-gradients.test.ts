/**
 * Gradient conventions (PyTorch's), each on a tiny program with a hand-computed gradient:
 * clip passes the gradient at exactly lo / hi; binary min/max split ties ½/½; abs'(0) = 0; `where`
 * routes to the taken branch; `sg` blocks; max/min reductions split ties evenly; masked tokens get 0;
 * scans (discounted, cumsum, cumprod with zero factors), shifts and quantiles; std_unbiased and
 * logsumexp stay finite (0) on zero-variance and empty inputs; zero-variance GRPO advantages.
 */
import { describe, expect, it } from 'vitest';
import { A } from './fixtures.js';
import { batch, expectArray, expectClose, expectFinite, run } from './helpers.js';

describe('elementwise conventions', () => {
  it('clip passes the gradient on the closed interval [lo, hi]; lo gets it where x < lo', () => {
    // logp = [1, 3, 2, 0, 4, (5 masked)], lo = old_logp = [1, 0, 0, 0.5, 0, 0], hi = 3
    //   t0 x = lo → x: 1;  t1 x = hi → x: 1;  t2 inside → x: 1;  t3 x < lo → lo: 1;  t4 x > hi → nothing;  t5 masked → 0
    const b = batch({ seqs: [{ logp: [1, 3, 2, 0, 4, 5], mask: [1, 1, 1, 1, 1, 0], old: [1, 0, 0, 0.5, 0, 0] }] });
    const out = run('loss = sum(clip(logp, old_logp, 3))', b, { grads: { logp: true, old_logp: true } });
    expectClose(out.loss, 1 + 3 + 2 + 0.5 + 3, 0, 'loss');
    expectArray(out.grads.logp.data, [1, 1, 1, 0, 0, 0], 0, 'd/dx');
    expectArray(out.grads.old_logp.data, [0, 0, 0, 1, 0, 0], 0, 'd/dlo');
  });

  it('binary min / max split the gradient ½ / ½ on ties', () => {
    // loss = Σ min(x, y) + 2 Σ max(x, y), x = logp = [1, 2, 3], y = old_logp = [1, 5, 0]
    //   t0 tie: min ½ / ½, max 2·½ = 1 / 1 → x 1.5, y 1.5
    //   t1 x < y: min → x 1, max → y 2          t2 x > y: min → y 1, max → x 2
    const b = batch({ seqs: [{ logp: [1, 2, 3], old: [1, 5, 0] }] });
    const out = run('loss = sum(min(logp, old_logp)) + 2 * sum(max(logp, old_logp))', b, {
      grads: { logp: true, old_logp: true },
    });
    expectArray(out.grads.logp.data, [1.5, 1, 2], 0, 'd/dx');
    expectArray(out.grads.old_logp.data, [1.5, 2, 1], 0, 'd/dy');
    // min(x, x) and max(x, x): both halves reach x → 1; min(x, 2) at x = 2 → ½
    const b2 = batch({ seqs: [{ logp: [2, -1] }] });
    expectArray(run('loss = sum(min(logp, logp)) + sum(max(logp, logp))', b2).grads.logp.data, [2, 2], 0, 'self ties');
    expectArray(run('loss = sum(min(logp, 2))', b2).grads.logp.data, [0.5, 1], 0, 'tie with a constant');
    expectArray(run('loss = sum(max(logp, 2))', b2).grads.logp.data, [0.5, 0], 0, 'tie with a constant (max)');
  });

  it("abs'(0) = 0, relu'(0) = 0", () => {
    // abs: [0, -2, 3] → [0, -1, 1]; relu: [0, -2, 3] → [0, 0, 1]
    const b = batch({ seqs: [{ logp: [0, -2, 3] }] });
    expectArray(run('loss = sum(abs(logp))', b).grads.logp.data, [0, -1, 1], 0, 'abs');
    expectArray(run('loss = sum(relu(logp))', b).grads.logp.data, [0, 0, 1], 0, 'relu');
  });

  it('where routes the gradient to the taken branch only', () => {
    // where(x > 0, 2x, 3x) at [1, -1, 0] → [2, 3, 3]; with a seq-level condition (reward > 0): s0 → 2x, s1 → 3x
    const b = batch({
      seqs: [
        { logp: [1, -1, 0], reward: 1 },
        { logp: [5], reward: -1 },
      ],
    });
    expectArray(
      run('loss = sum(where(logp > 0, 2 * logp, 3 * logp))', b).grads.logp.data,
      [2, 3, 3, 2],
      0,
      'token condition',
    );
    expectArray(
      run('loss = sum(where(reward > 0, 2 * logp, 3 * logp))', b).grads.logp.data,
      [2, 2, 2, 3],
      0,
      'seq condition',
    );
  });

  it('sg blocks the gradient', () => {
    // d/dx Σ x·sg(x) = sg(x) = x (not 2x); Σ sg(x) + 0·x → 0
    const b = batch({ seqs: [{ logp: [1, -2, 3] }] });
    expectArray(run('loss = sum(logp * sg(logp))', b).grads.logp.data, [1, -2, 3], 0, 'x·sg(x)');
    expectArray(
      run('loss = sum(sg(exp(logp)) * logp)', b).grads.logp.data,
      [Math.E, Math.exp(-2), Math.exp(3)],
      1e-15,
      'sg(exp(x))·x',
    );
    expectArray(run('loss = sum(sg(logp))', b).grads.logp.data, [0, 0, 0], 0, 'sg only');
  });

  it('the gradient at masked tokens is 0 (even where the masked value is huge)', () => {
    // Σ exp(x) over valid tokens of A: d/dx = exp(x) at valid tokens, 0 at t1 (100), t7 (50), t8 (-50)
    const g = run('loss = sum(exp(logp)) + mean(logp * logp)', A).grads.logp.data;
    const want = A.logp.map((x, t) => (A.mask[t] ? Math.exp(x) + (2 * x) / 8 : 0));
    expectArray(g, want, 1e-14, 'grad');
  });
});

describe('reductions', () => {
  it('max / min reductions split the gradient evenly among tied extremes', () => {
    // max per seq: s0 → t2 (3); s2 → t4, t6 (4, 4) ½ each; s4 → t10 (2); the masked 100 (t1) is not the max
    expectArray(
      run('loss = sum(max(logp per seq))', A).grads.logp.data,
      [0, 0, 1, 0, 0.5, 0, 0.5, 0, 0, 0, 1],
      0,
      'max per seq',
    );
    // min per seq: s0 → t0 (1); s2 → t5 (-1); s4 → t9 (0); the masked -50 (t8) is not the min
    expectArray(
      run('loss = sum(min(logp per seq))', A).grads.logp.data,
      [1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0],
      0,
      'min per seq',
    );
    // max per batch: 4 at t4 and t6 → ½ each
    expectArray(run('loss = max(logp)', A).grads.logp.data, [0, 0, 0, 0, 0.5, 0, 0.5, 0, 0, 0, 0], 0, 'max per batch');
    // max per group where logp < 3.5: g0 → t2 (3); g1 → t10 (2)
    expectArray(
      run('loss = sum(max(logp per group where logp < 3.5))', A).grads.logp.data,
      [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
      0,
      'max per group where',
    );
    // three-way tie: [2, 2, 2] → ⅓ each
    expectArray(
      run('loss = max(logp)', batch({ seqs: [{ logp: [2, 2, 2] }] })).grads.logp.data,
      [1 / 3, 1 / 3, 1 / 3],
      1e-15,
      'three-way',
    );
  });

  it('sum / mean / count-weighted gradients skip masked and filtered-out tokens', () => {
    // mean per seq summed: 1/3 at s0 and s2 tokens, 1/2 at s4 tokens
    expectArray(
      run('loss = sum(mean(logp per seq))', A).grads.logp.data,
      [1 / 3, 0, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0.5, 0.5],
      1e-15,
      'mean per seq',
    );
    // mean where logp > 1.5 (5 members: t2, t3, t4, t6, t10): 1/5 each
    expectArray(
      run('loss = mean(logp where logp > 1.5)', A).grads.logp.data,
      [0, 0, 0.2, 0.2, 0.2, 0, 0.2, 0, 0, 0, 0.2],
      1e-15,
      'mean where',
    );
  });

  it('std_unbiased / std_pop / var have finite (0) gradients on zero-variance and single-element inputs', () => {
    // s0 [2, 2, 2] (zero variance), s1 [5] (single), s2 [] (empty), s3 [7 masked]
    const b = batch({ seqs: [{ logp: [2, 2, 2] }, { logp: [5] }, { logp: [] }, { logp: [7], mask: [0] }] });
    for (const fn of ['std_unbiased', 'std_pop', 'var_unbiased', 'var_pop']) {
      const out = run(`loss = sum(${fn}(logp per seq)) + ${fn}(logp where logp < 3)`, b);
      expect(out.loss, fn).toBe(0);
      expectArray(out.grads.logp.data, [0, 0, 0, 0, 0], 0, `${fn} grad`);
    }
  });

  it('std_unbiased gradient on a non-degenerate input', () => {
    // x = [1, 3]: mean 2, std_unbiased = √((1 + 1)/1) = √2; d/dx_i = (x_i − mean) / ((n − 1)·std) = ∓1/√2
    const out = run('loss = std_unbiased(logp)', batch({ seqs: [{ logp: [1, 3] }] }));
    expectClose(out.loss, Math.SQRT2, 1e-15);
    expectArray(out.grads.logp.data, [-Math.SQRT1_2, Math.SQRT1_2], 1e-15);
  });

  it('logsumexp: softmax gradient; 0 loss and 0 gradient on empty, fully masked or filtered-out inputs', () => {
    // s0 [0, ln 3] → log(1 + 3) = ln 4, softmax [1/4, 3/4]; s1 [] → 0; s2 [5 masked] → 0
    const b = batch({ seqs: [{ logp: [0, Math.log(3)] }, { logp: [] }, { logp: [5], mask: [0] }] });
    const out = run('loss = sum(logsumexp(logp per seq)) + logsumexp(logp where logp > 1000)', b);
    expectClose(out.loss, Math.log(4), 1e-15, 'loss');
    expectArray(out.grads.logp.data, [0.25, 0.75, 0], 1e-15, 'grad');
  });

  // KNOWN BUG (reported): the logsumexp expansion forms exp(x − m) at every element, members or not;
  // an element the filter excludes that lies > ~709 above the members' max overflows to Infinity,
  // and the backward pass multiplies its zero adjoint by it: 0·Inf = NaN.
  it('logsumexp over a `where` gives 0 gradient to an element it filters out, even one far above the members', () => {
    // log-probs [-1, -750, -751]; members of `logp < -700`: -750, -751 → lse = -750 + log(1 + e⁻¹);
    // gradient = softmax over the members: [0, 1/(1 + e⁻¹), e⁻¹/(1 + e⁻¹)] (exp(-1 + 750) overflows if formed)
    const b = batch({ seqs: [{ logp: [-1, -750, -751] }] });
    const out = run('loss = logsumexp(logp where logp < -700)', b);
    const e1 = Math.exp(-1);
    expectClose(out.loss, -750 + Math.log1p(e1), 1e-15, 'loss');
    expectArray(out.grads.logp.data, [0, 1 / (1 + e1), e1 / (1 + e1)], 1e-14, 'grad');
  });

  it('logsumexp over a `where` that selects nothing: loss 0, gradient 0 (even next to large elements)', () => {
    // nothing is < -1000: m = 0 (empty max), and exp(800 − 0) overflows if formed at the non-member
    const b = batch({ seqs: [{ logp: [800, 1, 2] }] });
    const none = run('loss = logsumexp(logp where logp < -1000)', b);
    expect(none.loss).toBe(0);
    expectArray(none.grads.logp.data, [0, 0, 0], 0, 'grad, empty selection');
  });

  // KNOWN BUG (reported): var/std expand to Σ_where (x − mean)²; the backward pass of
  // `x − broadcast(mean)` sums the adjoint over all valid tokens, members or not, so a non-member
  // with a non-finite value (0·(−Inf) = NaN there) makes the gradient NaN at every token.
  it.each(['var_pop', 'var_unbiased', 'std_pop', 'std_unbiased'])(
    '%s over a `where` ignores a non-finite non-member',
    (fn) => {
      // y = log(relu(x)) with x = [-1, 1, 2] → y = [-Inf (non-member), 0, ln 2]; members of `logp > 0`: 0, ln 2
      //   mean μ = ln2/2, SS = 2·(ln2/2)² = (ln2)²/2
      //   var_pop = (ln2)²/4, var_unbiased = (ln2)²/2, std_pop = ln2/2, std_unbiased = ln2/√2
      //   dSS/dy = 2(y − μ) = [·, -ln2, ln2]; dy/dx = 1/x = [·, 1, 1/2]
      //   var_pop: dSS/2 → [0, -ln2/2, ln2/4]; var_unbiased: dSS/1 → [0, -ln2, ln2/2]
      //   std = √var: d std = d var / (2 std): std_pop → [0, -1/2, 1/4]; std_unbiased → [0, -1/√2, 1/(2√2)]
      const l2 = Math.LN2;
      const want: Record<string, [number, number[]]> = {
        var_pop: [(l2 * l2) / 4, [0, -l2 / 2, l2 / 4]],
        var_unbiased: [(l2 * l2) / 2, [0, -l2, l2 / 2]],
        std_pop: [l2 / 2, [0, -1 / 2, 1 / 4]],
        std_unbiased: [l2 / Math.SQRT2, [0, -1 / Math.SQRT2, 1 / (2 * Math.SQRT2)]],
      };
      const out = run(`loss = ${fn}(log(relu(logp)) where logp > 0)`, batch({ seqs: [{ logp: [-1, 1, 2] }] }));
      expectClose(out.loss, want[fn][0], 1e-14, 'loss');
      expectArray(out.grads.logp.data, want[fn][1], 1e-14, 'grad');
    },
  );
});

describe('scans and shifts', () => {
  it('discounted(x, 0.5) weighted by w = old_logp: dL/dx_s = Σ_{t ≤ s} w_t·0.5^(valid steps from t to s)', () => {
    // valid tokens and w: s0 t0 (.5), t2 (.25), t3 (2); s2 t4 (1), t5 (2), t6 (3); s4 t9 (-1), t10 (.5)
    //   s0: y0 = x0 + .5x2 + .25x3, y2 = x2 + .5x3, y3 = x3 (the masked t1 applies no discount)
    //     dx0 = .5; dx2 = .5·.5 + .25 = .5; dx3 = .25·.5 + .5·.25 + 2 = 2.25
    //   s2: dx4 = 1; dx5 = .5 + 2 = 2.5; dx6 = .25 + 1 + 3 = 4.25     s4: dx9 = -1; dx10 = -.5 + .5 = 0
    const out = run('loss = sum(discounted(logp, 0.5) * old_logp)', A);
    expectArray(out.grads.logp.data, [0.5, 0, 0.5, 2.25, 1, 2.5, 4.25, 0, 0, -1, 0], 1e-15, 'grad');
  });

  it('discounted(x, γ) with a token-level γ: gradients for x and for γ', () => {
    // L = Σ_valid y_t, y_t = x_t + γ_t·y_next (γ = old_logp): forward [2.75, ·, 3.5, 2 | 11, 7, 4 | · | -2, 2] → L = 30.25
    //   s0: dγ0 = y2 = 3.5; dγ2 = (1 + γ0)·y3 = 1.5·2 = 3; dγ3 = 0 (no next); dx0 = 1, dx2 = 1 + γ0 = 1.5, dx3 = 1 + γ2 + γ0γ2 = 1.375
    //   s2: dγ4 = y5 = 7; dγ5 = (1 + γ4)·y6 = 8; dγ6 = 0; dx4 = 1, dx5 = 1 + γ4 = 2, dx6 = 1 + γ5 + γ4γ5 = 5
    //   s4: dγ9 = y10 = 2; dγ10 = 0; dx9 = 1, dx10 = 1 + γ9 = 0
    const out = run('loss = sum(discounted(logp, old_logp))', A, { grads: { logp: true, old_logp: true } });
    expectClose(out.loss, 30.25, 1e-15, 'loss');
    expectArray(out.grads.logp.data, [1, 0, 1.5, 1.375, 1, 2, 5, 0, 0, 1, 0], 1e-15, 'd/dx');
    expectArray(out.grads.old_logp.data, [3.5, 0, 3, 0, 7, 8, 0, 0, 0, 2, 0], 1e-15, 'd/dγ');
  });

  it('cumsum / rcumsum / scan weighted gradients', () => {
    // cumsum: dL/dx_s = Σ_{t ≥ s} w_t: s0 [.5+.25+2, .25+2, 2] = [2.75, 2.25, 2]; s2 [6, 5, 3]; s4 [-.5, .5]
    expectArray(
      run('loss = sum(cumsum(logp) * old_logp)', A).grads.logp.data,
      [2.75, 0, 2.25, 2, 6, 5, 3, 0, 0, -0.5, 0.5],
      1e-15,
      'cumsum',
    );
    // rcumsum: dL/dx_s = Σ_{t ≤ s} w_t: s0 [.5, .75, 2.75]; s2 [1, 3, 6]; s4 [-1, -.5]
    expectArray(
      run('loss = sum(rcumsum(logp) * old_logp)', A).grads.logp.data,
      [0.5, 0, 0.75, 2.75, 1, 3, 6, 0, 0, -1, -0.5],
      1e-15,
      'rcumsum',
    );
    // scan(x, 0.5), unweighted: s0 y0 = x0, y2 = x2 + .5x0, y3 = x3 + .5x2 + .25x0 → [1.75, 1.5, 1]; s2 same; s4 [1.5, 1]
    expectArray(
      run('loss = sum(scan(logp, 0.5))', A).grads.logp.data,
      [1.75, 0, 1.5, 1, 1.75, 1.5, 1, 0, 0, 1.5, 1],
      1e-15,
      'scan',
    );
  });

  it('cumprod / rcumprod gradients with zero factors (no division by x) and a masked token between', () => {
    // s0 [2, (7 masked), 0, 3]: cumprod y = [2, ·, 0, 0]; L contribution 2
    //   dx0 = 1 + x2 + x2x3 = 1; dx2 = x0 + x0x3 = 2 + 6 = 8; dx3 = x0x2 = 0
    // s1 [1.5, 2]: y = [1.5, 3]; dx0 = 1 + 2 = 3; dx1 = 1.5
    // s2 [0, 0, 5]: y = [0, 0, 0]; dx0 = 1 + x1 + x1x2 = 1; dx1 = x0 + x0x2 = 0; dx2 = x0x1 = 0
    const b = batch({ seqs: [{ logp: [2, 7, 0, 3], mask: [1, 0, 1, 1] }, { logp: [1.5, 2] }, { logp: [0, 0, 5] }] });
    const c = run('loss = sum(cumprod(logp))', b);
    expectClose(c.loss, 2 + 4.5, 0, 'cumprod loss');
    expectArray(c.grads.logp.data, [1, 0, 8, 0, 3, 1.5, 1, 0, 0], 0, 'cumprod grad');
    // rcumprod: s0 y3 = 3, y2 = 0, y0 = 0 → dx3 = 1 + x2 + x0x2 = 1; dx2 = x3 + x0x3 = 9; dx0 = x2x3 = 0
    //   s1 y1 = 2, y0 = 3 → dx1 = 1 + 1.5 = 2.5, dx0 = 2;  s2 y = [0, 0, 5] → dx2 = 1, dx1 = x2 + x0x2 = 5, dx0 = x1x2 = 0
    const r = run('loss = sum(rcumprod(logp))', b);
    expectClose(r.loss, 3 + 5 + 5, 0, 'rcumprod loss');
    expectArray(r.grads.logp.data, [0, 0, 9, 1, 2, 2.5, 0, 5, 1], 0, 'rcumprod grad');
  });

  it('next / prev route the gradient back to the token they read', () => {
    // next: valid t reads next(t); dL/dx_s = w_{prev(s)}: s0 t2 ← w0 = .5, t3 ← w2 = .25; s2 t5 ← 1, t6 ← 2; s4 t10 ← -1
    expectArray(
      run('loss = sum(next(logp, 0) * old_logp)', A).grads.logp.data,
      [0, 0, 0.5, 0.25, 0, 1, 2, 0, 0, 0, -1],
      0,
      'next',
    );
    // prev: dL/dx_s = w_{next(s)}: s0 t0 ← w2 = .25, t2 ← w3 = 2; s2 t4 ← 2, t5 ← 3; s4 t9 ← .5
    expectArray(
      run('loss = sum(prev(logp, 0) * old_logp)', A).grads.logp.data,
      [0.25, 0, 2, 0, 2, 3, 0, 0, 0, 0.5, 0],
      0,
      'prev',
    );
  });
});

describe('quantile gradients go to the 1–2 interpolated elements', () => {
  it('per seq, q = 0.4, each method', () => {
    // s0 sorted [1 (t0), 2 (t3), 3 (t2)], pos 0.8; s2 sorted [-1 (t5), 4 (t4), 4 (t6)], pos 0.8 (tie: t4 first);
    // s4 sorted [0 (t9), 2 (t10)], pos 0.4.
    const cases: [string, number[]][] = [
      // linear: weights 1 − frac, frac → s0 t0 .2, t3 .8; s2 t5 .2, t4 .8; s4 t9 .6, t10 .4
      ['quantile', [0.2, 0, 0, 0.8, 0.8, 0.2, 0, 0, 0, 0.6, 0.4]],
      ['quantile_lower', [1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0]],
      ['quantile_higher', [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1]],
      // nearest: round(0.8) = 1 → t3, t4; round(0.4) = 0 → t9
      ['quantile_nearest', [0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]],
      ['quantile_midpoint', [0.5, 0, 0, 0.5, 0.5, 0.5, 0, 0, 0, 0.5, 0.5]],
    ];
    for (const [fn, want] of cases)
      expectArray(run(`loss = sum(${fn}(logp, 0.4 per seq))`, A).grads.logp.data, want, 1e-15, fn);
  });

  it('per batch with `where`, and at an exact order statistic', () => {
    // logp < 3.5 selects [1 (t0), 3 (t2), 2 (t3), -1 (t5), 0 (t9), 2 (t10)]; sorted -1 t5, 0 t9, 1 t0, 2 t3, 2 t10, 3 t2
    // q = 0.25 → pos 1.25: t9 .75, t0 .25
    expectArray(
      run('loss = quantile(logp, 0.25 where logp < 3.5)', A).grads.logp.data,
      [0.25, 0, 0, 0, 0, 0, 0, 0, 0, 0.75, 0],
      1e-15,
      'where',
    );
    // q = 0.5 per seq: s0 pos 1 → t3 (2) gets 1; s2 pos 1 → t4 (first 4); s4 pos 0.5 → t9 .5, t10 .5
    expectArray(
      run('loss = sum(quantile(logp, 0.5 per seq))', A).grads.logp.data,
      [0, 0, 0, 1, 1, 0, 0, 0, 0, 0.5, 0.5],
      1e-15,
      'exact',
    );
  });
});

describe('GRPO-style advantages', () => {
  // g0 = {s0 [1, 2] reward 1, s1 [2] reward 1} (all-equal rewards), g1 = {s2 [0.5] reward 0, s3 [1, -1] reward 2}
  const b = batch({
    seqs: [
      { logp: [1, 2], reward: 1, group: 0 },
      { logp: [2], reward: 1, group: 0 },
      { logp: [0.5], reward: 0, group: 1 },
      { logp: [1, -1], reward: 2, group: 1 },
    ],
  });
  const body = [
    'let adv = (reward - mean(reward per group)) / (std_unbiased(reward per group) + 1e-6)',
    'loss = mean(adv * logp)',
    'export a = adv',
  ].join('\n');

  it('a zero-variance group has advantage 0 and finite gradients', () => {
    const out = run(body, b, { grads: { logp: true, reward: true } });
    // g0: r − mean = 0 → adv 0; g1: mean 1, std_unbiased √((1 + 1)/1) = √2 → adv ∓1/(√2 + 1e-6)
    const s = Math.SQRT2 + 1e-6;
    expectArray(out.exports.a.data, [0, 0, -1 / s, 1 / s], 1e-15, 'adv');
    // loss = (0 + 0 + (-1/s)·0.5 + (1/s)·(1 − 1)) / 6 valid tokens
    expectClose(out.loss, -0.5 / s / 6, 1e-15, 'loss');
    // d/dlogp = adv / 6
    expectArray(out.grads.logp.data, [0, 0, 0, -1 / s / 6, 1 / s / 6, 1 / s / 6], 1e-15, 'd/dlogp');
    // d/dreward: c_i = ∂L/∂adv_i = Σ_t logp / 6 → c = [3/6, 2/6, 0.5/6, 0]
    //   g0 (σ = 0, the std path is cut at 0): dr_j = Σ_i c_i (δ_ij − ½) / (0 + 1e-6) → dr0 = (c0 − c1)/2·1e6, dr1 = −dr0
    //   g1 (σ = √2, d = r − μ = [-1, 1], ∂σ/∂r_j = d_j / ((n − 1)σ)):
    //     dr_j = Σ_i c_i (δ_ij − ½)/s − (Σ_i c_i d_i)/s² · d_j/σ,  Σ_i c_i d_i = −c2
    //     dr2 = (c2 − c3)/2/s − c2/(s²σ);   dr3 = −(c2 − c3)/2/s + c2/(s²σ)
    const c = [3 / 6, 2 / 6, 0.5 / 6, 0];
    const dr0 = (c[0] - c[1]) / 2 / 1e-6;
    const dr2 = (c[2] - c[3]) / 2 / s - c[2] / (s * s * Math.SQRT2);
    const g = out.grads.reward.data;
    expectFinite(g, 'd/dreward');
    expectArray([g[0], g[1]], [dr0, -dr0], 1e-9, 'd/dreward, zero-variance group');
    expect(Math.abs(g[2] - dr2), `d/dreward[2] ${g[2]} vs ${dr2}`).toBeLessThan(1e-12);
    expect(Math.abs(g[3] + dr2), `d/dreward[3] ${g[3]} vs ${-dr2}`).toBeLessThan(1e-12);
  });

  it('a group of one sequence has advantage 0 and finite gradients', () => {
    const one = batch({ seqs: [{ logp: [1, 2], reward: 5, group: 0 }] });
    const out = run(body, one, { grads: { logp: true, reward: true } });
    expectArray(out.exports.a.data, [0], 0, 'adv');
    expect(out.loss).toBe(0);
    expectArray(out.grads.logp.data, [0, 0], 0, 'd/dlogp');
    // a single sequence: r − mean(r) is identically 0, so dL/dr = c0·(1 − 1)/1e-6 = 0
    expectArray(out.grads.reward.data, [0], 0, 'd/dreward');
  });
});

it('every gradient of a mixed program on A is finite and 0 at masked tokens', () => {
  const out = run(
    [
      'let adv = (reward - mean(reward per group)) / (std_unbiased(reward per group) + 1e-6)',
      'let r   = exp(clip(logp - old_logp, -20, 20))',
      'loss = -mean(min(r * adv, clip(r, 0.8, 1.2) * adv)) + sum(logsumexp(logp per seq where logp > 0)) + sum(quantile(logp, 0.3 per group))',
    ].join('\n'),
    A,
  );
  expectFinite([out.loss], 'loss');
  expectFinite(out.grads.logp.data, 'grad');
  for (const t of [1, 7, 8]) expect(out.grads.logp.data[t]).toBe(0);
});
