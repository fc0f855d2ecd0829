/**
 * ORPO reference (TRL ORPOTrainer over response tokens, methods-dpo.md §17.5), float64, loops.
 *
 *   ā(y) = Σ_valid logp / L(y);  o(y) = ā − log(1 − e^ā);  z = o(y_w) − o(y_l)
 *   loss = NLL − β · mean over pairs of logσ(z),  NLL = token-mean −logp over valid chosen tokens
 *   (orpo_trl: ā over the response tokens only, the NLL over prompt and response)
 *
 * Hand-derived gradient: ∂o/∂ā = 1 + e^ā/(1 − e^ā) = 1/(1 − e^ā); ∂ā/∂logp_t = 1/L(y);
 * ∂(−β logσ(z))/∂z = −β σ(−z); ∂NLL/∂logp_t = −1/N_w at valid chosen tokens.
 */
import type { RaggedBatch } from '../../core/batch/batch.js';
import { type FamilyResult, logSigmoid, meanOr0, pairs, sigmoid, validTokensOf, values, zeros } from './family.js';

/**
 * `orpo` (response-only batches) or, with `withPrompt`, `orpo_trl`: the sequences hold prompt and
 * response tokens (`prompt` marks the former), the odds use the response tokens and the NLL every
 * valid token of the chosen sequences (TRL).
 */
export function orpoRef(b: RaggedBatch, params: { beta?: number } = {}, withPrompt = false): FamilyResult {
  const beta = params.beta ?? 0.1;
  const logp = values(b, 'logp');
  const prompt = withPrompt ? values(b, 'prompt') : new Array<number>(b.numTokens).fill(0);
  const responseTokens = (s: number) => validTokensOf(b, s).filter((t) => prompt[t] !== 1);
  const avg = (s: number) => {
    const ts = responseTokens(s);
    return ts.reduce((a, t) => a + logp[t]!, 0) / ts.length;
  };
  const odds = (a: number) => a - Math.log(1 - Math.exp(a));
  const P = pairs(b);
  const grad = zeros(b.numTokens);
  const ratios: number[] = [];
  const zs: number[] = [];
  const wins: number[] = [];
  for (const { w, l } of P) {
    const [aw, al] = [avg(w), avg(l)];
    const z = odds(aw) - odds(al);
    zs.push(z);
    ratios.push(logSigmoid(z));
    wins.push(aw > al ? 1 : 0);
    const dz = (-beta * sigmoid(-z)) / P.length;
    const [Lw, Ll] = [responseTokens(w).length, responseTokens(l).length];
    for (const t of responseTokens(w)) grad[t] += dz / (1 - Math.exp(aw)) / Lw;
    for (const t of responseTokens(l)) grad[t] -= dz / (1 - Math.exp(al)) / Ll;
  }
  const chosenTokens = P.flatMap(({ w }) => validTokensOf(b, w));
  const nll = chosenTokens.length ? -chosenTokens.reduce((a, t) => a + logp[t]!, 0) / chosenTokens.length : 0;
  for (const t of chosenTokens) grad[t] += -1 / chosenTokens.length;
  return {
    loss: nll - beta * meanOr0(ratios),
    metrics: {
      log_odds_ratio: meanOr0(ratios),
      log_odds_chosen: meanOr0(zs),
      nll,
      reward_accuracy: meanOr0(wins),
    },
    grads: { logp: grad },
  };
}
