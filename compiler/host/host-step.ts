/**
 * Host steps of a device program: ops with no device kernel yet (keyed reductions, quantiles,
 * ranks, prefix ids) run between launches on the interpreter's semantics, so they agree with the
 * reference exactly. A step reads its sources' sections back, evaluates the op on the whole batch
 * (sources without a section — constants, params, inputs — are evaluated here), and writes its
 * result's section.
 */
import { segmentsOf } from '../../core/batch/segments.js';
import type { HostStep } from '../../core/device/program.js';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import type { Node } from '../../core/ir/node.js';
import { evaluateNodes, evaluateOp } from '../interp/eval.js';
import { runValuesOf } from '../codegen/wgsl/slots.js';

/** @param sectionOf the section of a materialized node, undefined for a node without one. */
export function hostStep(node: Node, origin: number, sectionOf: (n: Node) => number | undefined): HostStep {
  const output = sectionOf(node) ?? fail(`host ${node.op} has no section`);
  const read = node.src.flatMap((s) => {
    const section = sectionOf(s);
    return section === undefined ? [] : [section];
  });
  return {
    kind: 'host',
    origin,
    describe: `host (${node.op})`,
    async run(io) {
      const values = await io.read(read);
      const opts = runValuesOf(io.given);
      const sources = node.src.map((s) => {
        const section = sectionOf(s);
        return section !== undefined ? values.get(section)! : evaluateNodes([s], io.batch, opts).get(s.id)!;
      });
      const out = evaluateOp(node, sources, io.batch, segmentsOf(io.batch));
      if (out.length) io.write(output, out);
    },
  };
}

function fail(message: string): never {
  throw new InternalError('host-step', message);
}
