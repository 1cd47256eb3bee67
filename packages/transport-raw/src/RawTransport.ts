/**
 * The raw transport: spoc-mail's own SMTP client on node:net and node:tls,
 * as core's `Transport` service. It sends a composed message to one
 * endpoint under one connection policy and returns a receipt or a
 * `TransportError`; which endpoints to try, and when to move to the backup,
 * is the Mailer's job.
 *
 * `make` opens a new connection for every message. `makePooled` (and
 * `layer`) keep connections for reuse, keyed by the whole connection
 * policy, reused after RSET, and closed (QUIT) when the scope that made the
 * transport closes. A connection that hit an error or a timeout is never
 * reused; an idle one that turns out dead at RSET is replaced by a new one
 * before anything of the message was sent.
 *
 * The SMTP transcript is logged at debug level only (`C:` and `S:` lines,
 * annotated with the endpoint), AUTH arguments masked where commands are
 * written. Nothing is written to stdout or stderr.
 *
 * Not supported: OAUTHBEARER (XOAUTH2 is, for an access token), CHUNKING/BDAT,
 * DSN, and sending to several servers from one call (that is the Mailer's).
 */
import { type Message, Transport, TransportError } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Pool } from "./internal/Pool.ts"
import * as Reply from "./internal/Reply.ts"
import * as Session from "./internal/Session.ts"

export interface PoolOptions {
  /** Idle connections kept per connection policy; default 5. */
  readonly maxIdlePerPolicy?: number
  /** Idle connections are closed after this many ms; default 30000. */
  readonly idleTimeoutMs?: number
  /** A connection is closed after this many messages; default 100. */
  readonly maxMessagesPerConnection?: number
}

export interface RawTransportOptions {
  /** Connection reuse for `makePooled`; `false` opens a new connection for every message. */
  readonly pool?: PoolOptions | false
  /** Bounds on what the server may send: a reply line and a whole reply, in octets. */
  readonly replyLimits?: Partial<Reply.ReplyLimits>
}

/** The transport's name in receipts and logs. */
export const name = "raw"

/**
 * Builds the raw transport with a new connection for every message (closed
 * with QUIT once the message is delivered). Needs no scope.
 */
export const make = (options: Omit<RawTransportOptions, "pool"> = {}): Transport.TransportShape =>
  build(limitsOf(options), undefined)

/**
 * Builds the raw transport with connection reuse: idle connections are kept
 * per connection policy, reused after RSET, and closed with the current scope.
 */
export const makePooled = (
  options: RawTransportOptions = {},
): Effect.Effect<Transport.TransportShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    if (options.pool === false) return make(options)
    const context = yield* Effect.context<never>()
    const pool = new Pool(
      {
        maxIdle: options.pool?.maxIdlePerPolicy ?? 5,
        idleTimeoutMs: options.pool?.idleTimeoutMs ?? 30_000,
        maxMessages: options.pool?.maxMessagesPerConnection ?? 100,
      },
      (session) => {
        Effect.runForkWith(context)(Session.close(session))
      },
    )
    yield* Effect.addFinalizer(() =>
      Effect.forEach(pool.drain(), Session.close, { concurrency: "unbounded", discard: true }),
    )
    return build(limitsOf(options), pool)
  })

/** The raw transport as core's `Transport` service, pooled, closed with the layer's scope. */
export const layer: Layer.Layer<Transport.Transport> = Layer.effect(
  Transport.Transport,
  makePooled(),
)

/** The raw transport as core's `Transport` service, with the given options. */
export const layerWith = (options: RawTransportOptions): Layer.Layer<Transport.Transport> =>
  Layer.effect(Transport.Transport, makePooled(options))

const limitsOf = (options: RawTransportOptions): Reply.ReplyLimits => ({
  ...Reply.defaultLimits,
  ...options.replyLimits,
})

const build = (limits: Reply.ReplyLimits, pool: Pool | undefined): Transport.TransportShape => {
  /** An idle connection that still answers RSET, else a new one. */
  const acquire = (policy: Transport.ConnectionPolicy, key: string) =>
    Effect.gen(function* () {
      while (pool !== undefined) {
        const idle = pool.take(key)
        if (idle === undefined) break
        const reset = yield* Effect.result(Session.reset(idle, policy))
        if (reset._tag === "Success") return idle
        Session.destroy(idle)
      }
      return yield* Session.open(policy, limits)
    })

  /** Returns a connection to the pool after a delivery, or closes it. */
  const release = (
    key: string,
    session: Session.Session,
    exit: Exit.Exit<unknown, unknown>,
  ): Effect.Effect<void> => {
    if (Exit.isSuccess(exit)) {
      return pool?.give(key, session) === true ? Effect.void : Session.close(session)
    }
    return Exit.hasInterrupts(exit)
      ? Effect.sync(() => Session.destroy(session))
      : Session.close(session)
  }

  const send = (
    message: Message.ComposedMessage,
    policy: Transport.ConnectionPolicy,
  ): Effect.Effect<Transport.Receipt, TransportError.TransportError> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const started = Date.now()
        const unsafe = Session.refuseUnsafe(message, policy)
        if (unsafe !== undefined) return yield* unsafe

        const key = pool === undefined ? "" : pool.keyOf(policy)
        const session = yield* restore(acquire(policy, key))
        const delivery = yield* restore(Session.deliver(session, message, policy)).pipe(
          Effect.onExit((exit) => release(key, session, exit)),
        )
        return {
          endpoint: policy.endpoint,
          transport: name,
          messageId: message.messageId,
          accepted: delivery.accepted,
          rejected: delivery.rejected,
          response: delivery.response,
          tls: session.tls,
          authenticated: session.authenticated,
          durationMs: Date.now() - started,
        } satisfies Transport.Receipt
      }),
    ).pipe(
      Effect.annotateLogs({
        transport: name,
        endpoint: TransportError.formatEndpoint(policy.endpoint),
      }),
    )

  return { name, send }
}
