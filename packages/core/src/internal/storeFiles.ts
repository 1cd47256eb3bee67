/**
 * Reading and editing trust store files of every format, recognised by their
 * content, never by their name: JKS or JCEKS by their magic number, PKCS#12
 * by its PFX structure, PEM by its BEGIN lines (after any BOM), DER by
 * parsing as one certificate. A folder holds such files; files in it that
 * hold no certificate are skipped and reported, hidden files are ignored.
 *
 * `trustStoreType` other than auto is honoured: a JKS setting on a PKCS#12
 * file is an error saying what the file really is. Every problem is thrown as
 * a `StoreProblem` without the path; `TrustStore.ts` adds it.
 */
import { X509Certificate } from "node:crypto"
import { readdirSync, readFileSync, statSync, unlinkSync } from "node:fs"
import { extname, join } from "node:path"
import type { TrustStoreType } from "../Settings.ts"
import { writeFileAtomic } from "./atomicWrite.ts"
import * as Der from "./der.ts"
import { jksAlias, type JksStore, looksLikeJks, readJks, writeJks } from "./jks.ts"
import {
  appendCertificate,
  decodeText,
  looksLikePem,
  parsePem,
  type PemText,
  removeBlocks,
} from "./pem.ts"
import { looksLikePkcs12, type Pkcs12Entry, readPkcs12, writePkcs12 } from "./pkcs12.ts"
import { StoreProblem } from "./storeProblem.ts"

export type StoreFormat = "PEM" | "DER" | "JKS" | "JCEKS" | "PKCS12" | "folder"

export interface RawEntry {
  readonly alias: string
  readonly kind: "trustedCertificate" | "privateKey"
  readonly der: Uint8Array
  /** For folders: the file the entry is in, and its place among the file's certificates. */
  readonly file?: string
  readonly indexInFile?: number
}

export interface ReadStore {
  readonly format: StoreFormat
  readonly entries: ReadonlyArray<RawEntry>
  /** Files of a folder that were skipped, with the reason. */
  readonly skipped: ReadonlyArray<string>
}

/** What the bytes are, by content. */
export const detect = (bytes: Uint8Array): StoreFormat | "truncated DER" | undefined => {
  const jks = looksLikeJks(bytes)
  if (jks !== undefined) return jks
  if (looksLikePkcs12(bytes)) return "PKCS12"
  if (looksLikePem(decodeText(bytes).text)) return "PEM"
  if (bytes[0] === Der.Tag.sequence) {
    try {
      const element = Der.read(bytes)
      if (element.end === bytes.length && isCertificate(bytes)) return "DER"
    } catch (error) {
      if (error instanceof Der.DerError && /more bytes/.test(error.message)) return "truncated DER"
    }
  }
  return undefined
}

/** The total length the outer DER element announces. */
const declaredLength = (bytes: Uint8Array): number => {
  const first = bytes[1] ?? 0
  if ((first & 0x80) === 0) return 2 + first
  const count = first & 0x7f
  let length = 0
  for (let i = 0; i < count; i++) length = length * 256 + (bytes[2 + i] ?? 0)
  return 2 + count + length
}

const isCertificate = (der: Uint8Array): boolean => {
  try {
    new X509Certificate(der)
    return true
  } catch {
    return false
  }
}

const formatName: Readonly<Record<StoreFormat, string>> = {
  PEM: "a PEM file",
  DER: "a DER certificate",
  JKS: "a JKS store",
  JCEKS: "a JCEKS store",
  PKCS12: "a PKCS#12 store",
  folder: "a folder",
}

/** Checks the detected format against `trustStoreType`. */
const honourType = (format: StoreFormat, type: TrustStoreType): void => {
  const accepted: Readonly<Record<TrustStoreType, ReadonlyArray<StoreFormat>>> = {
    auto: ["PEM", "DER", "JKS", "JCEKS", "PKCS12", "folder"],
    JKS: ["JKS", "JCEKS"],
    PKCS12: ["PKCS12"],
    PEM: ["PEM", "DER", "folder"],
  }
  if (!accepted[type].includes(format)) {
    throw new StoreProblem(
      `is ${formatName[format]}, but trustStoreType is ${type}`,
      `set trustStoreType to auto (the type is recognised from the content) or to ${
        format === "JCEKS" ? "JKS" : format === "DER" || format === "folder" ? "PEM" : format
      }`,
    )
  }
}

/** A readable alias for a certificate without one: its common name, in lower case. */
export const aliasFromSubject = (der: Uint8Array): string => {
  const subject = new X509Certificate(der).subject
  const cn = /^CN=(.*)$/m.exec(subject)?.[1] ?? /^O=(.*)$/m.exec(subject)?.[1] ?? "certificate"
  const slug = cn
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^-+|-+$/g, "")
  return slug.length > 0 ? slug : "certificate"
}

/** Makes aliases unique by appending -2, -3, ... (case-insensitively, as keytool compares). */
const uniqueAliases = <E extends { alias: string }>(entries: ReadonlyArray<E>): Array<E> => {
  const taken = new Set<string>()
  return entries.map((entry) => {
    let alias = entry.alias
    for (let n = 2; taken.has(alias.toLowerCase()); n++) alias = `${entry.alias}-${n}`
    taken.add(alias.toLowerCase())
    return { ...entry, alias }
  })
}

const checkedCertificate = (der: Uint8Array, where: string): Uint8Array => {
  try {
    new X509Certificate(der)
    return der
  } catch (cause) {
    throw new StoreProblem(`holds a damaged certificate (${where})`, "export it again", { cause })
  }
}

const pemEntries = (pem: PemText): Array<RawEntry> =>
  uniqueAliases(
    pem.blocks.map((block, i) => ({
      alias: block.alias ?? aliasFromSubject(checkedCertificate(block.der, `certificate ${i + 1}`)),
      kind: "trustedCertificate" as const,
      der: checkedCertificate(block.der, `certificate ${i + 1}`),
    })),
  )

const jksEntries = (store: JksStore): Array<RawEntry> =>
  store.entries.flatMap((entry): Array<RawEntry> => {
    if (entry.kind === "trustedCertificate") {
      return [
        {
          alias: entry.alias,
          kind: entry.kind,
          der: checkedCertificate(entry.certificate, entry.alias),
        },
      ]
    }
    const first = entry.chain[0]
    return first === undefined
      ? []
      : [
          {
            alias: entry.alias,
            kind: "privateKey",
            der: checkedCertificate(first.der, entry.alias),
          },
        ]
  })

/**
 * Gives every PKCS#12 entry an alias: its friendly name, else its subject's
 * common name (openssl -export writes no friendly names), unique in the file.
 */
const namePkcs12 = (entries: ReadonlyArray<Pkcs12Entry>): Array<Pkcs12Entry & { alias: string }> =>
  uniqueAliases(
    entries.map((entry) => {
      if (entry.alias !== undefined) return { ...entry, alias: entry.alias }
      const der = entry.certificate
      return { ...entry, alias: der === undefined ? "private-key" : aliasFromSubject(der) }
    }),
  )

const pkcs12Entries = (entries: ReadonlyArray<Pkcs12Entry>): Array<RawEntry> =>
  namePkcs12(entries).flatMap((entry): Array<RawEntry> =>
    entry.certificate === undefined
      ? []
      : [
          {
            alias: entry.alias,
            kind: entry.kind,
            der: checkedCertificate(entry.certificate, entry.alias),
          },
        ],
  )

/** Reads the certificates of one file's bytes. */
export const readBytes = (bytes: Uint8Array, type: TrustStoreType, password: string): ReadStore => {
  const format = detect(bytes)
  if (format === undefined) {
    throw new StoreProblem(
      bytes.length === 0
        ? "is empty"
        : "is not a trust store spoc-mail recognises (not PEM, DER, JKS or PKCS#12)",
      "give a PEM or DER certificate file, a folder of them, a JKS or a PKCS#12 trust store",
    )
  }
  if (format === "truncated DER") {
    const declared = declaredLength(bytes)
    throw new StoreProblem(
      `is cut short (truncated?): it starts like a PKCS#12 store or DER certificate of ` +
        `${declared} bytes but has only ${bytes.length}`,
      "copy the trust store again from its source",
    )
  }
  honourType(format, type)
  switch (format) {
    case "JKS":
    case "JCEKS":
      return { format, entries: jksEntries(readJks(bytes, password)), skipped: [] }
    case "PKCS12":
      return { format, entries: pkcs12Entries(readPkcs12(bytes, password)), skipped: [] }
    case "PEM":
      return { format, entries: pemEntries(parsePem(bytes)), skipped: [] }
    case "DER":
      return {
        format,
        entries: [{ alias: aliasFromSubject(bytes), kind: "trustedCertificate", der: bytes }],
        skipped: [],
      }
    case "folder":
      throw new StoreProblem("is a folder", "read it with readPath")
  }
}

const certificateFiles = (folder: string): Array<string> =>
  readdirSync(folder)
    .filter((name) => !name.startsWith("."))
    .sort()
    .filter((name) => statSync(join(folder, name)).isFile())

/** Reads a file or a folder of files. */
export const readPath = (path: string, type: TrustStoreType, password: string): ReadStore => {
  if (!statSync(path).isDirectory()) return readBytes(readFileSync(path), type, password)
  honourType("folder", type)

  const entries: Array<RawEntry> = []
  const skipped: Array<string> = []
  const seen = new Set<string>()
  for (const name of certificateFiles(path)) {
    const bytes = readFileSync(join(path, name))
    const format = detect(bytes)
    if (format !== "PEM" && format !== "DER") {
      skipped.push(
        `${name}: ${format === undefined ? "no certificate" : `${format} ignored in a folder`}`,
      )
      continue
    }
    let read: ReadStore
    try {
      read = readBytes(bytes, "PEM", password)
    } catch (error) {
      if (error instanceof StoreProblem) {
        throw new StoreProblem(`holds ${name}, which ${error.message}`, error.fix, { cause: error })
      }
      throw error
    }
    const base = name.slice(0, name.length - extname(name).length) || name
    read.entries.forEach((entry, i) => {
      const fingerprint = new X509Certificate(entry.der).fingerprint256
      if (seen.has(fingerprint)) return // hash links of /etc/ssl/certs point at the same file
      seen.add(fingerprint)
      const alias =
        read.entries.length === 1 ? base : (parsePemAlias(bytes, i) ?? `${base}-${i + 1}`)
      entries.push({ ...entry, alias, file: name, indexInFile: i })
    })
  }
  return { format: "folder", entries: uniqueAliases(entries), skipped }
}

const parsePemAlias = (bytes: Uint8Array, index: number): string | undefined => {
  if (detect(bytes) !== "PEM") return undefined
  return parsePem(bytes).blocks[index]?.alias
}

// Editing.

const nowEntryDate = (): Date => new Date()

const findAlias = (store: ReadStore, alias: string): RawEntry | undefined =>
  store.entries.find((e) => e.alias.toLowerCase() === alias.toLowerCase())

/** Refuses an alias or certificate that is already in the store, as keytool does. */
const checkNew = (store: ReadStore, alias: string, der: Uint8Array): void => {
  const existing = findAlias(store, alias)
  if (existing !== undefined) {
    throw new StoreProblem(
      `already has an entry with the alias "${existing.alias}"`,
      "choose another alias, or remove the old entry first (spoc-mail trust remove)",
    )
  }
  const fingerprint = new X509Certificate(der).fingerprint256
  const same = store.entries.find((e) => new X509Certificate(e.der).fingerprint256 === fingerprint)
  if (same !== undefined) {
    throw new StoreProblem(
      `already holds this certificate, under the alias "${same.alias}"`,
      "nothing to do: it is trusted already",
    )
  }
}

/** Checks an alias before it is written into a file. */
export const checkAlias = (alias: string): void => {
  if (alias.trim() === "" || alias !== alias.trim() || /[\u0000-\u001f\u007f]/.test(alias)) {
    throw new StoreProblem(
      `cannot use the alias ${JSON.stringify(alias)}`,
      "use letters, digits, dots and dashes without leading or trailing spaces",
    )
  }
}

/** The format of a new store, for `create`. */
export type NewStoreFormat = "JKS" | "PKCS12" | "PEM"

/** Adds a trusted certificate to the store at `path` (creating it when `create` says how). */
export const addCertificate = (options: {
  readonly path: string
  readonly type: TrustStoreType
  readonly password: string
  readonly alias: string
  readonly der: Uint8Array
  readonly create?: NewStoreFormat
}): RawEntry => {
  const { path, type, password, der } = options
  checkAlias(options.alias)
  checkedCertificate(der, "the certificate to import")

  let exists = true
  try {
    statSync(path)
  } catch {
    exists = false
  }
  if (!exists) {
    if (options.create === undefined) {
      throw new StoreProblem("does not exist", "check the path, or ask to create a new store")
    }
    return createStore(path, options.create, password, options.alias, der)
  }

  const store = readPath(path, type, password)
  checkNew(store, options.alias, der)
  const bytes = statSync(path).isDirectory() ? undefined : readFileSync(path)
  switch (store.format) {
    case "JKS":
    case "JCEKS": {
      const jks = readJks(bytes!, password)
      const alias = jksAlias(options.alias)
      const entry = {
        kind: "trustedCertificate" as const,
        alias,
        date: nowEntryDate(),
        certificate: der,
        certificateType: "X.509",
      }
      writeFileAtomic(
        path,
        writeJks({ type: jks.type, entries: [...jks.entries, entry] }, password),
      )
      return { alias, kind: "trustedCertificate", der }
    }
    case "PKCS12": {
      // Entries without a friendly name get the alias they are listed under, so keytool lists them.
      const named = namePkcs12(readPkcs12(bytes!, password))
      const added: Pkcs12Entry = {
        kind: "trustedCertificate",
        alias: options.alias,
        certificate: der,
      }
      writeFileAtomic(path, writePkcs12([...named, added], password))
      return { alias: options.alias, kind: "trustedCertificate", der }
    }
    case "PEM":
      writeFileAtomic(path, appendCertificate(parsePem(bytes!), options.alias, der))
      return { alias: options.alias, kind: "trustedCertificate", der }
    case "DER":
      throw new StoreProblem(
        "is a DER file, which holds exactly one certificate",
        "convert it to PEM first (openssl x509 -inform DER -in FILE -out FILE.pem) or import " +
          "into a PEM, JKS or PKCS#12 store",
      )
    case "folder": {
      const file = join(path, `${options.alias}.pem`)
      if (statExists(file)) {
        throw new StoreProblem(`already has a file ${options.alias}.pem`, "choose another alias")
      }
      writeFileAtomic(file, appendCertificate(parsePem(new Uint8Array()), options.alias, der))
      return { alias: options.alias, kind: "trustedCertificate", der, file: `${options.alias}.pem` }
    }
  }
}

const statExists = (path: string): boolean => {
  try {
    statSync(path)
    return true
  } catch {
    return false
  }
}

const createStore = (
  path: string,
  format: NewStoreFormat,
  password: string,
  alias: string,
  der: Uint8Array,
): RawEntry => {
  switch (format) {
    case "JKS": {
      const entry = {
        kind: "trustedCertificate" as const,
        alias: jksAlias(alias),
        date: nowEntryDate(),
        certificate: der,
        certificateType: "X.509",
      }
      writeFileAtomic(path, writeJks({ type: "JKS", entries: [entry] }, password))
      return { alias: entry.alias, kind: "trustedCertificate", der }
    }
    case "PKCS12":
      writeFileAtomic(
        path,
        writePkcs12([{ kind: "trustedCertificate", alias, certificate: der }], password),
      )
      return { alias, kind: "trustedCertificate", der }
    case "PEM":
      writeFileAtomic(path, appendCertificate(parsePem(new Uint8Array()), alias, der))
      return { alias, kind: "trustedCertificate", der }
  }
}

/** Removes the entry with `alias` (any case) and returns it. */
export const removeEntry = (options: {
  readonly path: string
  readonly type: TrustStoreType
  readonly password: string
  readonly alias: string
}): RawEntry => {
  const { path, type, password } = options
  const store = readPath(path, type, password)
  const entry = findAlias(store, options.alias)
  if (entry === undefined) {
    const known = store.entries.map((e) => e.alias)
    throw new StoreProblem(
      `has no entry with the alias "${options.alias}"`,
      known.length === 0 ? "the store is empty" : `the aliases are: ${known.join(", ")}`,
    )
  }
  const index = store.entries.indexOf(entry)
  if (store.entries.length === 1 && store.format !== "folder") {
    throw new StoreProblem(
      `would be left empty without "${entry.alias}", and an empty trust store is refused`,
      "delete the file instead, or clear trustStorePath to trust only the system roots",
    )
  }

  switch (store.format) {
    case "JKS":
    case "JCEKS": {
      const jks = readJks(readFileSync(path), password)
      const entries = jks.entries.filter((e) => e.alias.toLowerCase() !== entry.alias.toLowerCase())
      writeFileAtomic(path, writeJks({ type: jks.type, entries }, password))
      return entry
    }
    case "PKCS12": {
      const named = namePkcs12(readPkcs12(readFileSync(path), password))
      const kept = named.filter((e) => e.alias.toLowerCase() !== entry.alias.toLowerCase())
      writeFileAtomic(path, writePkcs12(kept, password))
      return entry
    }
    case "PEM": {
      const pem = parsePem(readFileSync(path))
      writeFileAtomic(path, removeBlocks(pem, [pem.blocks[index]!]))
      return entry
    }
    case "DER":
      throw new StoreProblem("is a DER file with one certificate", "delete the file instead")
    case "folder": {
      const file = join(path, entry.file!)
      const inFile = store.entries.filter((e) => e.file === entry.file)
      if (inFile.length === 1) {
        unlinkSync(file)
      } else {
        const pem = parsePem(readFileSync(file))
        writeFileAtomic(file, removeBlocks(pem, [pem.blocks[entry.indexInFile ?? 0]!]))
      }
      return entry
    }
  }
}
