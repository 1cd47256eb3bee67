/**
 * The central configuration the reference Management Server serves: a YAML
 * file with global `settings` that apply to every spooler controller, and
 * `groups` whose `settings` override them for their `members` (see
 * `packages/testkit/fixtures/management-server/central.yaml`).
 *
 * This module parses and checks the whole file, and computes the settings of
 * one controller. It refuses what every client would refuse anyway (a value
 * that is a list or a map, a line break or NUL in a value, a misspelt field
 * such as `member:`), naming the line and how to fix it, so that an
 * administrator learns about a mistake when saving the file rather than from
 * every controller. It does not know the settings catalogue: an unknown key
 * is served as written and the client's resolution warns about it.
 *
 * Rules worth knowing:
 * - A key a group names replaces the global value, even with an empty string
 *   (served as is: an empty value means *inherit* on the controller).
 * - `key:` with nothing after it (YAML null) is served as the empty string.
 * - Controller ids are matched without regard to case. A controller that is a
 *   member of several groups gets their settings applied in file order (the
 *   later group wins); the file loads with a warning naming the groups.
 */
import { createHash } from "node:crypto"
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml"

/** A setting value as the file gives it; sent to clients with the same type. */
export type SettingValue = string | number | boolean

export type Settings = Readonly<Record<string, SettingValue>>

export interface Group {
  readonly name: string
  /** Controller ids as written in the file. */
  readonly members: ReadonlyArray<string>
  readonly settings: Settings
}

/** A checked central file. */
export interface CentralConfig {
  readonly schemaVersion: 1
  readonly settings: Settings
  readonly groups: ReadonlyArray<Group>
  /** A hash of the file's bytes: changes whenever the file does. */
  readonly revision: string
  /** Things that load but deserve a look (a controller in several groups). */
  readonly warnings: ReadonlyArray<string>
}

/** What one controller gets: its settings, the groups that shaped them and their revision. */
export interface ControllerSettings {
  readonly controllerId: string
  readonly settings: Settings
  /** Names of the groups the controller is a member of, in the order they were applied. */
  readonly groups: ReadonlyArray<string>
  /** A hash of exactly what is served, so it changes only when this controller's settings do. */
  readonly revision: string
}

/** The central file cannot be used. `message` names the file, the line and the fix. */
export class CentralConfigError extends Error {
  override readonly name = "CentralConfigError"
  constructor(
    readonly path: string,
    /** 1-based line of the problem, when known. */
    readonly line: number | undefined,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${path}${line === undefined ? "" : `:${line}`}: ${problem}. Fix: ${fix}`)
  }
}

/** Larger files are refused: a central mail configuration is a few kilobytes. */
export const maxFileBytes = 1024 * 1024

/** Longest value served; a mail setting is far shorter. */
export const maxValueLength = 8192

const settingKey = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/

/** What a controller id may look like, in the file and in request paths. */
export const controllerIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

const controlCharacters = /[\r\n\0]/

const shortHash = (text: string | Uint8Array): string =>
  createHash("sha256").update(text).digest("hex").slice(0, 16)

type Path = ReadonlyArray<string | number>

/** Parses and checks a central file's bytes; `path` is only used in messages. */
export const parseCentralConfig = (path: string, bytes: Uint8Array): CentralConfig => {
  if (bytes.byteLength > maxFileBytes) {
    throw new CentralConfigError(
      path,
      undefined,
      `the file has ${bytes.byteLength} bytes, more than the ${maxFileBytes} allowed`,
      "keep only the mail settings and their groups in it",
    )
  }
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    throw new CentralConfigError(path, undefined, "the file is not UTF-8", "save it as UTF-8")
  }

  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false })
  const syntax = doc.errors[0]
  if (syntax !== undefined) {
    const line = lineCounter.linePos(syntax.pos[0]).line
    throw new CentralConfigError(
      path,
      line,
      `the YAML cannot be read: ${syntax.message.split("\n")[0]}`,
      "correct the YAML syntax at that line (indentation, quotes, a repeated key)",
    )
  }
  const fail = (at: Path, problem: string, fix: string): never => {
    throw new CentralConfigError(path, lineOf(doc, lineCounter, at), problem, fix)
  }

  let root: unknown
  try {
    root = doc.toJS({ maxAliasCount: 100 })
  } catch (cause) {
    return fail([], `the YAML cannot be read: ${(cause as Error).message}`, "simplify the file")
  }
  if (!isPlainObject(root)) {
    return fail([], "the file is not a YAML map", "start from the example in the README")
  }
  checkFields(root, [], ["schemaVersion", "settings", "groups"], fail)
  if (root.schemaVersion !== 1) {
    fail(["schemaVersion"], "schemaVersion must be 1", "write `schemaVersion: 1` at the top")
  }
  const settings = readSettings(root.settings ?? {}, ["settings"], fail)

  const groupsValue = root.groups ?? []
  if (!Array.isArray(groupsValue)) {
    return fail(["groups"], "groups must be a list", "write each group as `- name: ...`")
  }
  const groups: Array<Group> = []
  const names = new Set<string>()
  const membership = new Map<string, Array<string>>()
  groupsValue.forEach((value: unknown, i) => {
    const at: Path = ["groups", i]
    if (!isPlainObject(value)) {
      return fail(at, "a group must be a map", "give it name, members and settings")
    }
    checkFields(value, at, ["name", "members", "settings"], fail)
    const name = value.name
    if (typeof name !== "string" || name.trim() === "") {
      return fail([...at, "name"], "the group has no name", "add `name: <group name>`")
    }
    if (names.has(name)) {
      fail([...at, "name"], `the group name "${name}" is used twice`, "give each group its name")
    }
    names.add(name)
    const members = value.members ?? []
    if (!Array.isArray(members)) {
      return fail([...at, "members"], "members must be a list", "write members: [id-1, id-2]")
    }
    members.forEach((member: unknown, j) => {
      if (typeof member !== "string" || !controllerIdPattern.test(member)) {
        fail(
          [...at, "members", j],
          `member ${JSON.stringify(member)} is not a controller id`,
          "write the id as text (quote ids made of digits), letters, digits, '.', '_', '-'",
        )
      }
      const id = (member as string).toLowerCase()
      const seen = membership.get(id) ?? []
      if (!seen.includes(name)) membership.set(id, [...seen, name])
    })
    groups.push({
      name,
      members: members as Array<string>,
      settings: readSettings(value.settings ?? {}, [...at, "settings"], fail),
    })
  })

  const warnings = [...membership.entries()]
    .filter(([, in_]) => in_.length > 1)
    .map(
      ([id, in_]) =>
        `${path}: controller ${id} is a member of ${in_.join(", ")}; ` +
        `their settings apply in that order, the last wins`,
    )
  return { schemaVersion: 1, settings, groups, revision: shortHash(bytes), warnings }
}

/** The settings one controller gets: the global ones, overridden by each of its groups. */
export const settingsFor = (central: CentralConfig, controllerId: string): ControllerSettings => {
  const id = controllerId.toLowerCase()
  const mine = central.groups.filter((g) => g.members.some((m) => m.toLowerCase() === id))
  const settings: Record<string, SettingValue> = { ...central.settings }
  for (const group of mine) Object.assign(settings, group.settings)
  return {
    controllerId,
    settings,
    groups: mine.map((g) => g.name),
    revision: shortHash(JSON.stringify({ schemaVersion: 1, settings })),
  }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !isBytes(value)

const isBytes = (value: unknown): boolean => value instanceof Uint8Array

const checkFields = (
  value: Record<string, unknown>,
  at: Path,
  known: ReadonlyArray<string>,
  fail: (at: Path, problem: string, fix: string) => never,
): void => {
  for (const field of Object.keys(value)) {
    if (!known.includes(field)) {
      fail(
        [...at, field],
        `unknown field "${field}"${at.length === 0 ? "" : ` in ${describePath(at)}`}`,
        `use only ${known.join(", ")}`,
      )
    }
  }
}

const readSettings = (
  value: unknown,
  at: Path,
  fail: (at: Path, problem: string, fix: string) => never,
): Settings => {
  if (value === null) return {}
  if (!isPlainObject(value)) {
    return fail(at, `${describePath(at)} must be a map`, "write one `key: value` per line")
  }
  const settings: Record<string, SettingValue> = {}
  for (const [key, raw] of Object.entries(value)) {
    const where = [...at, key]
    if (!settingKey.test(key)) {
      fail(where, `"${key}" is not a setting name`, "use the spoc.conf names, such as mailserver")
    }
    if (raw === null) {
      settings[key] = ""
    } else if (typeof raw === "string") {
      if (controlCharacters.test(raw)) {
        fail(
          where,
          `the value of ${key} has a line break or NUL character`,
          "write the value on one line; for a long value use the folded style `>-`",
        )
      }
      if (raw.length > maxValueLength) {
        fail(where, `the value of ${key} is too long`, `keep it under ${maxValueLength} chars`)
      }
      settings[key] = raw
    } else if (typeof raw === "number") {
      if (!Number.isFinite(raw)) {
        fail(where, `the value of ${key} is not a finite number`, "write a plain number")
      }
      settings[key] = raw
    } else if (typeof raw === "boolean") {
      settings[key] = raw
    } else {
      fail(
        where,
        `the value of ${key} is a ${Array.isArray(raw) ? "list" : "map or other structure"}`,
        "write a single text, number or true/false; for a list, write it as one text",
      )
    }
  }
  return settings
}

const describePath = (at: Path): string =>
  at.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("")

/** The line of the entry at `at` (its key when it has one), or of its closest existing parent. */
const lineOf = (doc: Document, counter: LineCounter, at: Path): number | undefined => {
  for (let n = at.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(at.slice(0, n), true)
    const offset =
      keyOffset(doc, at.slice(0, n)) ??
      (isMap(node) || isSeq(node) || isScalar(node) ? node.range?.[0] : undefined)
    if (offset !== undefined) return counter.linePos(offset).line
  }
  return undefined
}

/** The offset of the key of a map entry, so that the line shown is the one with the key. */
const keyOffset = (doc: Document, at: Path): number | undefined => {
  const key = at[at.length - 1]
  if (typeof key !== "string") return undefined
  const parent = at.length === 1 ? doc.contents : doc.getIn(at.slice(0, -1), true)
  if (!isMap(parent)) return undefined
  for (const item of parent.items) {
    if (isScalar(item.key) && item.key.value === key) return item.key.range?.[0]
  }
  return undefined
}
