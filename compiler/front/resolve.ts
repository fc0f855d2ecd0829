/**
 * Name collection: the declarations of a module (params, inputs, mask, lets, defs, imports),
 * duplicate definitions (E0102), imports that cannot be found (E0103), missing or duplicate loss
 * (E0401, E0403). Uses inside expressions are resolved while checking (check.ts), which knows the
 * local scopes of `def` bodies.
 */
import { error, type Diagnostic } from '../../core/diagnostics/diagnostic.js';
import type { Span } from '../../core/source/source-file.js';
import { closest } from '../../core/diagnostics/suggest.js';
import type { Item, Module } from './ast.js';
import { BUILTIN_VALUES, isFunctionName } from './builtins.js';

export type Decl = Extract<Item, { kind: 'param' | 'input' | 'mask' | 'let' | 'def' }>;

/** A library module made available by `import NAME`. */
export interface ImportedModule {
  readonly name: string;
  readonly scope: Scope;
}

export interface Scope {
  readonly module: Module;
  readonly decls: ReadonlyMap<string, Decl>;
  readonly imports: ReadonlyMap<string, ImportedModule>;
  readonly name: string;
}

/** Finds and parses a stdlib module by name; `undefined` if there is none. */
export type ImportLoader = (name: string) => { module: Module; diagnostics: Diagnostic[] } | undefined;

export interface ResolveOptions {
  readonly loadImport: ImportLoader;
  readonly availableImports: () => string[];
  /** Library modules have no loss. */
  readonly isLibrary?: boolean;
  /** Import chain, to stop import cycles. */
  readonly importing?: ReadonlySet<string>;
}

export function resolve(module: Module, opts: ResolveOptions): { scope: Scope; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const decls = new Map<string, Decl>();
  const imports = new Map<string, ImportedModule>();
  const firstSpan = new Map<string, Span>();
  let name = module.file.path.replace(/^.*[\\/]/, '').replace(/\.credo$/, '');
  let loss: Extract<Item, { kind: 'loss' }> | undefined;
  const metricNames = new Map<string, Item>();

  const define = (id: { text: string; span: Span }, what: string) => {
    const prev = firstSpan.get(id.text);
    if (prev) {
      diagnostics.push(
        error('E0102', `\`${id.text}\` is defined twice`, id.span, {
          label: `second definition of this ${what}`,
          secondary: [{ span: prev, message: 'first defined here' }],
          help: `rename one of them, e.g. \`${id.text}_2\``,
        }),
      );
      return false;
    }
    if ((BUILTIN_VALUES as readonly string[]).includes(id.text) || isFunctionName(id.text)) {
      diagnostics.push(
        error('E0102', `\`${id.text}\` is a built-in name and cannot be redefined`, id.span, {
          label: 'shadows a built-in',
          help: `choose another name, e.g. \`my_${id.text}\``,
        }),
      );
      return false;
    }
    firstSpan.set(id.text, id.span);
    return true;
  };

  let objectiveItem: Extract<Item, { kind: 'objective' }> | undefined;
  let maskItem: Extract<Item, { kind: 'mask' }> | undefined;
  const once = (item: Extract<Item, { kind: 'objective' | 'mask' }>, prev: { name: { span: Span } } | undefined) => {
    if (!prev) return true;
    diagnostics.push(
      error('E0102', `a second \`${item.kind}\` declaration`, item.name.span, {
        label: `second ${item.kind}`,
        secondary: [{ span: prev.name.span, message: 'first declared here' }],
        help:
          item.kind === 'mask'
            ? 'an objective has one token mask; combine conditions with `and` in a `let`'
            : 'a file holds one objective',
      }),
    );
    return false;
  };
  for (const item of module.items) {
    switch (item.kind) {
      case 'objective':
        if (once(item, objectiveItem)) [objectiveItem, name] = [item, item.name.text];
        break;
      case 'import': {
        if (!define(item.name, 'import')) break;
        if (opts.importing?.has(item.name.text)) {
          diagnostics.push(
            error('E0104', `import cycle through \`${item.name.text}\``, item.name.span, {
              label: 'imported again here',
            }),
          );
          break;
        }
        const loaded = opts.loadImport(item.name.text);
        if (!loaded) {
          const suggestion = closest(item.name.text, opts.availableImports());
          diagnostics.push(
            error('E0103', `no stdlib module named \`${item.name.text}\``, item.name.span, {
              label: 'not found',
              help: suggestion
                ? `did you mean \`import ${suggestion}\`?`
                : `available modules: ${opts.availableImports().join(', ')}`,
            }),
          );
          break;
        }
        diagnostics.push(...loaded.diagnostics);
        const inner = resolve(loaded.module, {
          ...opts,
          isLibrary: true,
          importing: new Set([...(opts.importing ?? []), item.name.text]),
        });
        diagnostics.push(...inner.diagnostics);
        imports.set(item.name.text, { name: item.name.text, scope: inner.scope });
        break;
      }
      case 'mask':
        if (!once(item, maskItem)) break;
        maskItem = item;
        if (define(item.name, item.kind)) decls.set(item.name.text, item);
        break;
      case 'def': {
        const seen = new Map<string, Span>();
        for (const p of item.params) {
          if ((BUILTIN_VALUES as readonly string[]).includes(p.text) || isFunctionName(p.text)) {
            diagnostics.push(
              error('E0102', `parameter \`${p.text}\` of \`${item.name.text}\` shadows a built-in`, p.span, {
                label: 'a built-in name',
                help: `rename it, e.g. \`${p.text}_\``,
              }),
            );
          }
          const prev = seen.get(p.text);
          if (prev)
            diagnostics.push(
              error('E0102', `parameter \`${p.text}\` appears twice in \`${item.name.text}\``, p.span, {
                label: 'second parameter with this name',
                secondary: [{ span: prev, message: 'first here' }],
                help: 'give each parameter its own name',
              }),
            );
          seen.set(p.text, p.span);
        }
        if (define(item.name, item.kind)) decls.set(item.name.text, item);
        break;
      }
      case 'param':
      case 'input':
      case 'let':
        if (define(item.name, item.kind)) decls.set(item.name.text, item);
        break;
      case 'loss':
        if (loss) {
          diagnostics.push(
            error('E0403', 'the objective has two `loss` definitions', item.keyword, {
              label: 'second loss',
              secondary: [{ span: loss.keyword, message: 'first loss here' }],
              help: 'keep one `loss`; report other quantities with `metric NAME = …`',
            }),
          );
        } else loss = item;
        break;
      case 'metric':
      case 'export':
        if (metricNames.has(item.name.text)) {
          diagnostics.push(
            error('E0102', `${item.kind} \`${item.name.text}\` is defined twice`, item.name.span, {
              label: 'second definition',
              secondary: [
                {
                  span: (metricNames.get(item.name.text) as { name: { span: Span } }).name.span,
                  message: 'first defined here',
                },
              ],
            }),
          );
        } else metricNames.set(item.name.text, item);
        break;
    }
  }

  if (!opts.isLibrary && !loss) {
    const file = module.file;
    // point at the last character of the last item (not into a trailing comment); an empty file gets an empty span
    const end = module.items.length ? module.items[module.items.length - 1].span.end : 0;
    diagnostics.push(
      error('E0401', 'the objective has no `loss`', file.span(Math.max(0, end - 1), end), {
        label: 'the program ends here without a loss',
        help: 'add a line such as `loss = -mean(surr)`',
      }),
    );
  }
  return { scope: { module, decls, imports, name }, diagnostics };
}
