/** Distillation: TRL GKD's generalised JSD, Liger's jsd and cosine_similarity. */
import { SNAPSHOT, type FrameworkName } from './types.js';

const TRL_GKD = `${SNAPSHOT.trl} trl/experimental/gkd/gkd_trainer.py`;
const LIGER_JSD = `${SNAPSHOT.liger} src/liger_kernel/chunked_loss/jsd_loss.py (LigerFusedLinearJSDLoss) and fused_linear_distillation.py`;
const LIGER_COS = `${SNAPSHOT.liger} src/liger_kernel/chunked_loss/cosine_similarity_loss.py (LigerFusedLinearCosineSimilarityLoss) and fused_linear_distillation.py`;

export const DISTILL_NAMES: readonly FrameworkName[] = [
  {
    framework: 'TRL',
    setting: 'GKDTrainer (GKDConfig beta=0.5, the loss at temperature 1)',
    readFrom: `${TRL_GKD} (generalized_jsd_loss, compute_loss)`,
    objective: 'gkd',
    claims: ['liger-jsd-soft-only-is-gkd-defaults'],
    note: 'compute_loss calls generalized_jsd_loss without a temperature: GKDConfig.temperature (0.9) is only the sampling temperature of on-policy generation; lmbda and seq_kd choose the data. Normalised by num_items_in_batch when the Trainer passes it (the label count; N for one batch without gradient accumulation)',
  },
  {
    framework: 'TRL',
    setting: 'GKDConfig beta=0 (forward KL)',
    readFrom: `${TRL_GKD} (generalized_jsd_loss)`,
    objective: 'gkd',
    set: { beta: 0 },
    claims: ['gkd-beta0-forward-not-reverse-kl', 'gkd-beta0-discontinuous'],
    note: 'KL(teacher ‖ student) (F.kl_div(student_log_probs, teacher_log_probs)); a special case of the code, not the limit of the generalised JSD (which tends to 0)',
  },
  {
    framework: 'TRL',
    setting: 'GKDConfig beta=1 (reverse KL)',
    readFrom: `${TRL_GKD} (generalized_jsd_loss)`,
    objective: 'gkd',
    set: { beta: 1 },
    claims: ['gkd-beta1-aligndistil-gkd-mode', 'gkd-beta1-aligndistil-gkd-mode-many-seqs'],
    note: 'KL(student ‖ teacher): aligndistil’s mode 4 ("gkd") with a token mean instead of a mean of per-sequence means',
  },
  {
    framework: 'TRL',
    setting: 'GKDTrainer.generalized_jsd_loss(temperature=τ, reduction="batchmean")',
    readFrom: `${TRL_GKD} (generalized_jsd_loss)`,
    objective: 'gkd',
    set: { reduction: 0 },
    note: 'the static function called with its own temperature (set `temperature`); labels != -100 is the mask',
  },
  {
    framework: 'TRL',
    setting: 'GKDTrainer.generalized_jsd_loss(reduction="sum")',
    readFrom: `${TRL_GKD} (generalized_jsd_loss)`,
    objective: 'gkd',
    set: { reduction: 1 },
  },
  {
    framework: 'TRL',
    setting: 'GKDTrainer.generalized_jsd_loss(reduction="mean")',
    readFrom: `${TRL_GKD} (generalized_jsd_loss)`,
    objective: 'gkd',
    set: { reduction: 2 },
    note: 'the mean over the N·V elementwise kl_div terms, i.e. the batchmean divided by V; TRL gives NaN on a fully masked batch (the mean of an empty tensor), Credo 0. reduction="none" (the elementwise tensor) is not a loss: not a row',
  },
  {
    framework: 'TRL',
    setting: 'GKDConfig use_liger_kernel=True',
    readFrom: `${TRL_GKD} (__init__: LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0), compute_loss)`,
    objective: 'liger_jsd',
    set: { weight_hard_loss: 0, weight_soft_loss: 1 },
    claims: ['liger-jsd-soft-only-is-gkd', 'liger-jsd-soft-only-is-gkd-defaults'],
    note: 'set beta to GKDConfig.beta; no temperature (1), as the plain path',
  },
  {
    framework: 'Liger',
    setting: 'LigerFusedLinearJSDLoss() (weight_hard_loss=0.5, weight_soft_loss=0.5, beta=0.5, temperature=1)',
    readFrom: LIGER_JSD,
    objective: 'liger_jsd',
    claims: ['liger-jsd-hard-loss-not-gkd', 'liger-jsd-beta-not-mirrored'],
    note: 'hard = CE of the labels at temperature 1, soft = generalised JSD at the temperature, each summed per chunk and divided by the labelled rows of the whole batch; no temperature² factor',
  },
  {
    framework: 'Liger',
    setting: 'LigerFusedLinearJSDLoss(weight_hard_loss=1, weight_soft_loss=0)',
    readFrom: LIGER_JSD,
    objective: 'liger_jsd',
    set: { weight_hard_loss: 1, weight_soft_loss: 0 },
    claims: ['liger-jsd-hard-only-is-sft'],
  },
  {
    framework: 'Liger',
    setting:
      'LigerFusedLinearCosineSimilarityLoss() (weight_hard_loss=0.5, weight_soft_loss=0.5, beta=0.5, temperature=1)',
    readFrom: LIGER_COS,
    objective: 'liger_cosine',
    claims: ['liger-cosine-hard-is-liger-jsd-hard'],
    note: 'β·(1 − cos) between the (temperature-scaled) logit rows, summed over every row passed — distillation_loss_fn ignores the labels — and divided by the labelled rows; the mask is the rows passed, `labeled` the labels != ignore_index',
  },
];
