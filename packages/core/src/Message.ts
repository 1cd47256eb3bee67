/**
 * The message to send, and its composition into MIME by nodemailer's mail
 * composer (a well-kept library; MIME is not this project's business). A
 * message is composed once, before any attempt, so that every transport and
 * every attempt (primary, then backup) sends the same bytes with the same
 * Message-ID and Date.
 *
 * Bad input is refused here, at the boundary: addresses that do not parse,
 * CR or LF in a header, a message with no recipient.
 */
import { randomUUID } from "node:crypto"
import { Readable } from "node:stream"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import MailComposer from "nodemailer/lib/mail-composer"
import { encodeWords, quoteString } from "nodemailer/lib/mime-funcs"
import type { Mailbox } from "./Settings.ts"
import * as Parse from "./SettingsParser.ts"

export interface Attachment {
  readonly filename: string
  /** A file to read when the message is streamed (read again for every attempt). */
  readonly path?: string
  readonly content?: string | Uint8Array
  readonly contentType?: string
}

export interface MailMessage {
  /** Defaults to `mailfrom` of the settings. */
  readonly from?: string
  readonly to: ReadonlyArray<string>
  readonly cc?: ReadonlyArray<string>
  readonly bcc?: ReadonlyArray<string>
  readonly subject: string
  readonly text?: string
  readonly html?: string
  readonly attachments?: ReadonlyArray<Attachment>
  readonly headers?: Readonly<Record<string, string>>
}

export interface Envelope {
  readonly from: string
  readonly to: ReadonlyArray<string>
}

/** A composed message: the SMTP envelope and the MIME bytes, streamable any number of times. */
export interface ComposedMessage {
  readonly envelope: Envelope
  readonly messageId: string
  /** Any envelope address is not ASCII: the server must offer SMTPUTF8. */
  readonly needsSmtpUtf8: boolean
  /** A fresh stream of the same bytes, for each attempt. */
  readonly stream: () => Readable
}

export class MessageError extends Data.TaggedError("MessageError")<{
  readonly field: string
  readonly detail: string
  readonly fix: string
}> {
  override get message(): string {
    return `${this.field}: ${this.detail}. Fix: ${this.fix}`
  }
}

const addresses = (
  field: string,
  values: ReadonlyArray<string> | undefined,
): Effect.Effect<Array<string>, MessageError> =>
  Effect.forEach(values ?? [], (value) => {
    const parsed = Parse.mailboxList(value)
    return parsed.ok
      ? Effect.succeed(parsed.value.map((box) => box.address))
      : Effect.fail(new MessageError({ field, detail: parsed.problem, fix: parsed.fix }))
  }).pipe(Effect.map((lists) => lists.flat()))

const headerSafe = /^[^\r\n\0]*$/

/**
 * The longest word a header may hold. The composer folds headers between
 * words, so a longer run of ASCII without a space would make a line over
 * the 998 octets RFC 5322 2.1.1 allows; room is left for the header's name.
 */
const maxHeaderWord = 900

const longestWord = (value: string): number =>
  value.split(/\s+/).reduce((longest, word) => Math.max(longest, word.length), 0)

/** The line of the message over SMTP's limit of 998 octets (RFC 5321 4.5.3.1.6), if any. */
const overlongLine = (
  text: string,
): { readonly line: number; readonly length: number } | undefined => {
  let start = 0
  for (let line = 1; start <= text.length; line++) {
    const end = text.indexOf("\n", start)
    const stop = end < 0 ? text.length : end
    const length = stop - start - (text[stop - 1] === "\r" ? 1 : 0)
    if (length > 998) return { line, length }
    if (end < 0) return undefined
    start = end + 1
  }
  return undefined
}

/**
 * Composes a message. `sender` is the configured `mailfrom`; `from` in the
 * message overrides it. `domain` is used for the Message-ID.
 */
export const compose = (
  message: MailMessage,
  sender: Mailbox,
): Effect.Effect<ComposedMessage, MessageError> =>
  Effect.gen(function* () {
    const to = yield* addresses("to", message.to)
    const cc = yield* addresses("cc", message.cc)
    const bcc = yield* addresses("bcc", message.bcc)
    const recipients = [...to, ...cc, ...bcc]
    if (recipients.length === 0) {
      return yield* new MessageError({
        field: "to",
        detail: "the message has no recipient",
        fix: "give at least one address in to, cc or bcc",
      })
    }
    const parsedFrom = message.from === undefined ? undefined : Parse.mailbox(message.from)
    if (parsedFrom?.ok === false) {
      // The parser's words: they never repeat a line break, nor a value whole.
      return yield* new MessageError({
        field: "from",
        detail: parsedFrom.problem,
        fix: parsedFrom.fix,
      })
    }
    const fromBox = parsedFrom === undefined ? sender : parsedFrom.value
    for (const [name, value] of [
      ["subject", message.subject],
      ["from", fromBox.name ?? ""],
      ...Object.entries(message.headers ?? {}),
    ] as Array<[string, string]>) {
      if (!headerSafe.test(value) || !headerSafe.test(name)) {
        return yield* new MessageError({
          field: name,
          detail: "contains a line break",
          fix: "write header values on one line",
        })
      }
      const word = longestWord(value)
      if (word > maxHeaderWord) {
        return yield* new MessageError({
          field: name,
          detail:
            `holds a word of ${word} characters; a header line may hold 998 ` +
            "(RFC 5322), and a header is folded only between words",
          fix: `shorten it, or break it with spaces into words of at most ${maxHeaderWord}`,
        })
      }
    }

    const domain = fromBox.address.split("@").pop() ?? "localhost"
    const messageId = `<${randomUUID()}@${domain}>`
    const node = new MailComposer({
      from:
        fromBox.name === undefined
          ? fromBox.address
          : { name: fromBox.name, address: fromBox.address },
      to,
      cc,
      bcc,
      subject: message.subject,
      ...(message.text === undefined ? {} : { text: message.text }),
      ...(message.html === undefined ? {} : { html: message.html }),
      attachments: (message.attachments ?? []).map((a) => ({
        filename: a.filename,
        ...(a.path === undefined ? {} : { path: a.path }),
        ...(a.content === undefined
          ? {}
          : { content: typeof a.content === "string" ? a.content : Buffer.from(a.content) }),
        ...(a.contentType === undefined ? {} : { contentType: a.contentType }),
      })),
      headers: { ...message.headers },
      messageId,
      date: new Date(),
      disableUrlAccess: true,
    }).compile()

    return {
      envelope: { from: fromBox.address, to: recipients },
      messageId,
      needsSmtpUtf8: [fromBox.address, ...recipients].some((a) => /[^\x00-\x7f]/.test(a)),
      stream: () => node.createReadStream(),
    }
  })

const headerBlock = (text: string): { headers: Array<[string, string]>; bodyStart: number } => {
  const end = text.search(/\r?\n\r?\n/)
  const head = end === -1 ? text : text.slice(0, end)
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ")
  const headers: Array<[string, string]> = []
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(":")
    if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1)])
  }
  return { headers, bodyStart: end === -1 ? text.length : end }
}

/** A display name as a header wants it: MIME-encoded if not ASCII, quoted if it has specials. */
const displayName = (name: string): string =>
  !/^[\x20-\x7e]*$/.test(name)
    ? encodeWords(name, "Q", 52)
    : /[()<>[\]:;@\\,."]/.test(name)
      ? quoteString(name)
      : name

/** A `From:` header for a mailbox. */
const fromHeader = (box: Mailbox): string =>
  box.name === undefined
    ? `From: ${box.address}`
    : `From: ${displayName(box.name)} <${box.address}>`

/**
 * A ready-made message (an .eml file). The envelope comes from its From, To,
 * Cc and Bcc headers unless given; a Bcc header is removed so that blind
 * copies stay blind. A file without From, Date or Message-ID gets them (From
 * from `from`, else the configured sender), since RFC 5322 requires the
 * first two; the bytes are otherwise sent as they are.
 */
export const fromEml = (
  bytes: Uint8Array,
  options: {
    readonly sender: Mailbox
    readonly from?: string
    readonly to?: ReadonlyArray<string>
  },
): Effect.Effect<ComposedMessage, MessageError> =>
  Effect.gen(function* () {
    const text = Buffer.from(bytes).toString("latin1")
    const overlong = overlongLine(text)
    if (overlong !== undefined) {
      return yield* new MessageError({
        field: "eml",
        detail:
          `line ${overlong.line} of the file is ${overlong.length} octets long; ` +
          "SMTP carries at most 998 octets a line",
        fix: "save the message again with its long lines encoded (quoted-printable or base64)",
      })
    }
    const { headers, bodyStart } = headerBlock(text)
    const values = (name: string) =>
      headers.filter(([n]) => n === name).map(([, v]) => Buffer.from(v, "latin1").toString("utf8"))
    const to =
      options.to ??
      ["to", "cc", "bcc"].flatMap((name) => values(name)).filter((v) => v.trim() !== "")
    const recipients = yield* addresses("to", to)
    if (recipients.length === 0) {
      return yield* new MessageError({
        field: "to",
        detail: "the message names no recipient",
        fix: "give --to, or To/Cc headers in the file",
      })
    }

    const given = options.from === undefined ? undefined : Parse.mailbox(options.from)
    if (given !== undefined && !given.ok) {
      return yield* new MessageError({ field: "from", detail: given.problem, fix: given.fix })
    }
    const headerFrom = values("from")[0]
    const [fromAddress] =
      given?.ok === true
        ? [given.value.address]
        : headerFrom === undefined
          ? [options.sender.address]
          : yield* addresses("from", [headerFrom])

    const added: Array<string> = []
    if (headerFrom === undefined) added.push(fromHeader(given?.ok ? given.value : options.sender))
    if (values("date").length === 0) added.push(`Date: ${new Date().toUTCString()}`)
    const messageId = values("message-id")[0]?.trim() ?? `<${randomUUID()}@spoc-mail>`
    if (values("message-id").length === 0) added.push(`Message-ID: ${messageId}`)

    const withoutBcc = text.replace(/^bcc:.*(?:\r?\n[ \t].*)*\r?\n/gim, (match, offset: number) =>
      offset < bodyStart ? "" : match,
    )
    const prefix = added.map((line) => `${line}\r\n`).join("")
    const raw = Buffer.concat([Buffer.from(prefix, "utf8"), Buffer.from(withoutBcc, "latin1")])
    return {
      envelope: { from: fromAddress!, to: recipients },
      messageId,
      needsSmtpUtf8: [fromAddress!, ...recipients].some((a) => /[^\x00-\x7f]/.test(a)),
      stream: () => Readable.from([raw]),
    }
  })
