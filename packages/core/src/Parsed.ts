/**
 * The result of parsing one raw setting: a typed value, or a problem with the
 * fix to suggest. Parsers return it instead of throwing, so that resolution
 * can collect every problem of every key in one pass.
 */

export type Parsed<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly problem: string; readonly fix: string }

export const ok = <A>(value: A): Parsed<A> => ({ ok: true, value })

export const fail = (problem: string, fix: string): Parsed<never> => ({ ok: false, problem, fix })
