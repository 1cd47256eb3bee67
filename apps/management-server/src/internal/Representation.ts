/**
 * The two representations of a mail-settings response, JSON and YAML, and
 * the choice between them from the request's `Accept` header (RFC 9110
 * section 12.5.1: media ranges with q-values; JSON wins ties and is the
 * answer when the client states no preference).
 */
import { stringify } from "yaml"
import type { Settings } from "../CentralConfig.ts"

export type Format = "json" | "yaml"

/** The body every client receives. */
export interface MailSettingsDocument {
  readonly schemaVersion: 1
  readonly revision: string
  readonly settings: Settings
}

export const contentTypes: Readonly<Record<Format, string>> = {
  json: "application/json; charset=utf-8",
  yaml: "application/yaml; charset=utf-8",
}

const mediaTypes: ReadonlyArray<readonly [string, Format]> = [
  ["application/json", "json"],
  ["application/yaml", "yaml"],
  ["application/x-yaml", "yaml"],
  ["text/yaml", "yaml"],
  ["text/x-yaml", "yaml"],
]

/** The format to answer in, or `undefined` when the client accepts neither (406). */
export const negotiate = (accept: string | undefined): Format | undefined => {
  if (accept === undefined || accept.trim() === "") return "json"
  const quality: Record<Format, number> = { json: -1, yaml: -1 }
  const specificity: Record<Format, number> = { json: -1, yaml: -1 }
  for (const part of accept.split(",")) {
    const [range = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase())
    const qParam = params.find((p) => p.startsWith("q="))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (!Number.isFinite(q)) continue
    for (const [type, format] of mediaTypes) {
      const level =
        range === type ? 2 : range === `${type.split("/")[0]}/*` ? 1 : range === "*/*" ? 0 : -1
      // The most specific range that matches decides the quality (RFC 9110 12.5.1).
      if (level < 0) continue
      if (level > specificity[format] || (level === specificity[format] && q > quality[format])) {
        specificity[format] = level
        quality[format] = q
      }
    }
  }
  if (quality.json <= 0 && quality.yaml <= 0) return undefined
  return quality.yaml > quality.json ? "yaml" : "json"
}

export const render = (format: Format, document: MailSettingsDocument): string =>
  format === "json" ? `${JSON.stringify(document, null, 2)}\n` : stringify(document)
