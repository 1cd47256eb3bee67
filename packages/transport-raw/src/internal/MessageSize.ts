/**
 * The size of a composed message as DATA will carry it (line ends as CRLF,
 * dots doubled), for the SIZE extension (RFC 1870): a message over the
 * server's limit fails before MAIL, and MAIL declares `SIZE=n` so the server
 * can refuse early. It is measured by streaming the message once through the
 * same encoder DATA uses and counting, so memory stays flat; the result is
 * kept per message, so a retry on another connection or the backup server
 * does not measure again. Only servers that declare a limit cost a measure.
 */
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { Message } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import { DataEncoder } from "./DataEncoder.ts"

const measured = new WeakMap<Message.ComposedMessage, number>()

/** Counts the octets of the message as sent; fails with what stopped the stream. */
export const measure = (message: Message.ComposedMessage): Effect.Effect<number, unknown> => {
  const known = measured.get(message)
  if (known !== undefined) return Effect.succeed(known)
  return Effect.tryPromise({
    try: async (signal) => {
      const encoder = new DataEncoder()
      const sink = new Writable({ write: (_chunk, _encoding, done) => done() })
      await pipeline(message.stream(), encoder, sink, { signal })
      measured.set(message, encoder.octets)
      return encoder.octets
    },
    catch: (cause) => cause,
  })
}
