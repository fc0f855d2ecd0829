/**
 * The `dist` module (stdlib/lib/dist.credo): the Gaussian log-density (elementwise and diagonal over
 * the vocabulary axis) and the Bernoulli log-probability of a binary action (plain and clamped),
 * value by value and gradient by gradient against the formulas written out here by hand.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile, type Objective } from '../../src/objective.js';
import { logSigmoid, sigmoid, validTokensOf, values } from '../reference/family.js';
import { close } from '../helpers/expect.js';
import { arbFor } from './family-helpers.js';

const LOG_2PI = Math.log(2 * Math.PI);
const program = (body: string): Objective =>
  compile({ source: `objective dist_test\nimport dist\n${body}\n`, path: 'dist-test.credo' });

const valid = (b: Parameters<Objective['run']>[0]) =>
  Array.from({ length: b.numSeqs }, (_, s) => validTokensOf(b, s)).flat();

describe('dist.normal_logpdf', () => {
  const obj = program(
    `input x : token grad\ninput mu : token grad\ninput sd : token grad\nmask mask : token\nloss = sum(dist.normal_logpdf(x, mu, 0.5 + sd ^ 2))`,
  );
  it('value −(x − μ)²/(2σ²) − log σ − ½ log 2π and its gradients in x, μ and σ', () => {
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const out = obj.run(b);
        const [x, mu, sd] = ['x', 'mu', 'sd'].map((n) => values(b, n));
        let want = 0;
        for (const t of valid(b)) {
          const s = 0.5 + sd[t]! ** 2;
          const r = (x[t]! - mu[t]!) / s;
          want += -0.5 * r * r - Math.log(s) - 0.5 * LOG_2PI;
          expect(close(out.grads.x!.data[t]!, -r / s)).toBe(true);
          expect(close(out.grads.mu!.data[t]!, r / s)).toBe(true);
          expect(close(out.grads.sd!.data[t]!, ((r * r) / s - 1 / s) * 2 * sd[t]!)).toBe(true);
        }
        expect(close(out.loss, want)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('dist.normal_logpdf summed over the vocabulary axis (a diagonal Gaussian)', () => {
  const obj = program(
    `param sigma = 0.7\ninput x : token x vocab\ninput mu : token x vocab grad\nmask mask : token\nloss = sum(sum(dist.normal_logpdf(x, mu, sigma) per token))\nmetric sq = sum(sum(-0.5 * ((x - mu) / sigma) ^ 2 per token))`,
  );
  it('the sum over the coordinates; ∂/∂μ = (x − μ)/σ²', () => {
    fc.assert(
      fc.property(arbFor(obj), (b) => {
        const out = obj.run(b);
        const [x, mu] = ['x', 'mu'].map((n) => values(b, n));
        const V = b.vocabSize;
        const s = 0.7;
        let want = 0;
        let sq = 0;
        for (const t of valid(b))
          for (let j = 0; j < V; j++) {
            const r = (x[t * V + j]! - mu[t * V + j]!) / s;
            want += -0.5 * r * r - Math.log(s) - 0.5 * LOG_2PI;
            sq += -0.5 * r * r;
            expect(close(out.grads.mu!.data[t * V + j]!, r / s)).toBe(true);
          }
        expect(close(out.loss, want)).toBe(true);
        expect(close(out.metrics.sq!, sq)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('dist.bernoulli_logp / bernoulli_logp_clamped', () => {
  const obj = program(
    `param eps = 0.01\ninput a : token bool\ninput z : token grad\ninput y : token grad\nmask mask : token\nloss = sum(dist.bernoulli_logp(a, z)) + sum(dist.bernoulli_logp_clamped(a, y, eps)) + 0 * sum(dist.bernoulli_logp(f32(a), z))\nmetric num = sum(dist.bernoulli_logp(f32(a), z))\nmetric boo = sum(dist.bernoulli_logp(a, z))`,
  );
  it('logσ(±z) with ∂/∂z = a − σ(z) (a bool or a 0/1 number); the clamped form is log clip(p, eps, 1 − eps) with no gradient outside', () => {
    fc.assert(
      fc.property(arbFor(obj), fc.constantFrom(1, 10), (b, scale) => {
        const tensors = new Map(b.tensors);
        const y0 = b.tensors.get('y')!;
        tensors.set('y', { ...y0, data: y0.data.map((v) => v * scale) });
        const bb = { ...b, tensors };
        const out = obj.run(bb);
        const [a, z, y] = ['a', 'z', 'y'].map((n) => values(bb, n));
        const eps = 0.01;
        let want = 0;
        for (const t of valid(bb)) {
          want += a[t] ? logSigmoid(z[t]!) : logSigmoid(-z[t]!);
          expect(close(out.grads.z!.data[t]!, a[t]! - sigmoid(z[t]!))).toBe(true);
          const p = Math.min(Math.max(a[t] ? sigmoid(y[t]!) : 1 - sigmoid(y[t]!), eps), 1 - eps);
          want += Math.log(p);
          const inside = p > eps && p < 1 - eps;
          expect(close(out.grads.y!.data[t]!, inside ? a[t]! - sigmoid(y[t]!) : 0)).toBe(true);
        }
        expect(close(out.loss, want)).toBe(true);
        expect(out.metrics.num).toBe(out.metrics.boo);
      }),
      { numRuns: 100 },
    );
  });
});
