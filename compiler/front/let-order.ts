/**
 * The order in which to lower the `let`s a `let` depends on, dependencies first. The checker lowers
 * a `let` on first use; lowering them in this order first means each use finds its `let` done, so a
 * chain of thousands of `let`s written before their uses never nests thousands of calls.
 */
import type { Expr } from './ast.js';
import type { Decl, Scope } from './resolve.js';

/** Names of the scope's `let`s that `e` reads directly (not through a `def`), each once. */
function letsRead(e: Expr, scope: Scope): string[] {
  const out = new Set<string>();
  const stack: Expr[] = [e];
  while (stack.length) {
    const x = stack.pop()!;
    switch (x.kind) {
      case 'name':
        if (!x.member && scope.decls.get(x.name.text)?.kind === 'let') out.add(x.name.text);
        break;
      case 'unary':
        stack.push(x.operand);
        break;
      case 'binary':
        stack.push(x.right, x.left);
        break;
      case 'call':
        for (let i = x.args.length - 1; i >= 0; i--) stack.push(x.args[i]);
        if (x.by) stack.push(x.by);
        if (x.where) stack.push(x.where);
        break;
      case 'num':
      case 'bool':
        break;
    }
  }
  return [...out];
}

/**
 * The `let`s that `name` depends on, transitively, each after its own dependencies, leaving out
 * `name` itself and those `pending` says are lowered or being lowered. A cycle is cut where it
 * closes; lowering then reports it (E0104) at the use that closes it.
 */
export function letsBefore(scope: Scope, name: string, pending: (name: string) => boolean): string[] {
  const value = (n: string) => (scope.decls.get(n) as Extract<Decl, { kind: 'let' }>).value;
  const order: string[] = [];
  const state = new Map<string, 'open' | 'done'>([[name, 'open']]);
  const stack: { name: string; deps: string[]; next: number }[] = [
    { name, deps: letsRead(value(name), scope), next: 0 },
  ];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.next < top.deps.length) {
      const d = top.deps[top.next++];
      if (state.has(d) || !pending(d)) continue;
      state.set(d, 'open');
      stack.push({ name: d, deps: letsRead(value(d), scope), next: 0 });
    } else {
      stack.pop();
      state.set(top.name, 'done');
      if (top.name !== name) order.push(top.name);
    }
  }
  return order;
}
