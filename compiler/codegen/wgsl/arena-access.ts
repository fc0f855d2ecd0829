/**
 * Text passes over a finished kernel that change how it reaches the arenas, without changing what
 * it computes: offsets and scalars read once (hoistSections), and the vec4 binding of the arenas
 * for vectorized kernels (toVec4Arenas).
 */

/**
 * Moves a kernel's accesses of the sections that live in the global arena `G` (slots.ts: the
 * scalars, batch-level values, batch partials) from `D` to `G`. Templates write every f32 access
 * against `D`, as `D[sec(Nu) + …]` or `D[Nu]` (a scalar); which arena holds a section is decided here.
 */
export function toGlobalArena(code: string, global: ReadonlySet<number>): string {
  return code
    .replace(/\bD\[sec\((\d+)u\)/g, (m, k) => (global.has(Number(k)) ? `G[sec(${k}u)` : m))
    .replace(/\bD\[(\d+)u\]/g, 'G[$1u]');
}

/**
 * Reads every section offset and every scalar (params, clock, sizes) a kernel uses once, at the
 * top of `main`. Both are loads from the arenas; repeated in a loop body the compiler cannot hoist
 * them (`D` is written in the loop, so it must assume aliasing; llvmpipe does not either). No
 * kernel writes the scalars or the `I` arena, so reading them once is exact.
 */
export function hoistSections(code: string): string {
  const head = code.indexOf('fn main(');
  const open = code.indexOf('{', head) + 1;
  let body = code.slice(open);
  const used = (re: RegExp) => [...new Set([...body.matchAll(re)].map((m) => Number(m[1])))].sort((a, b) => a - b);
  const sections = used(/sec\((\d+)u\)/g);
  const scalars = used(/G\[(\d+)u\]/g);
  body = body.replace(/sec\((\d+)u\)/g, 'sec$1').replace(/G\[(\d+)u\]/g, 'd$1');
  const lets = [
    ...sections.map((k) => `\n  let sec${k} = sec(${k}u);`),
    ...scalars.map((k) => `\n  let d${k} = G[${k}u];`),
  ].join('');
  return code.slice(0, open) + lets + body;
}

/**
 * Turns a kernel written against scalar arenas into one that binds them as vec4 arrays: every
 * scalar access X[i] becomes X[(i) >> 2u][(i) & 3u], and the vector accesses (written VD[…],
 * VI[…]) become plain D[…], I[…].
 */
export function toVec4Arenas(code: string): string {
  const rewrite = (text: string): string => {
    let out = '';
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if ((c === 'D' || c === 'I') && text[i + 1] === '[' && !/[A-Za-z0-9_]/.test(text[i - 1] ?? ' ')) {
        let depth = 0;
        let j = i + 1;
        for (; j < text.length; j++) {
          if (text[j] === '[') depth++;
          else if (text[j] === ']' && --depth === 0) break;
        }
        const inner = rewrite(text.slice(i + 2, j));
        out += `${c}[(${inner}) >> 2u][(${inner}) & 3u]`;
        i = j + 1;
      } else {
        out += c;
        i++;
      }
    }
    return out;
  };
  return rewrite(code)
    .replace('var<storage, read_write> D: array<f32>;', 'var<storage, read_write> D: array<vec4f>;')
    .replace('var<storage, read> I: array<u32>;', 'var<storage, read> I: array<vec4<u32>>;')
    .replace(/\bVD\[/g, 'D[')
    .replace(/\bVI\[/g, 'I[');
}
