import { Redacted } from "effect"
import * as Effect from "effect/Effect"
import { TransportError } from "@spoc-mail/core"
import { afterEach, describe, expect, it } from "vitest"
import * as H from "../src/internal/contractHarness.ts"

const plainBlob = Buffer.from(`\0${H.credentials.user}\0${H.credentials.password}`).toString(
  "base64",
)
const passwordBase64 = Buffer.from(H.credentials.password).toString("base64")
const endpoint = { host: "127.0.0.1", port: 25, role: "primary" } as const

/** Each finding's "form(s) in place", once. */
const places = (found: ReadonlyArray<string>): Array<string> => [
  ...new Set(found.map((line) => line.slice(0, line.indexOf(": ")))),
]

let capture: H.SecretCapture | undefined
afterEach(() => {
  capture?.stop()
  capture = undefined
})

describe("the contracts' secret search", () => {
  it("names each form of a secret it finds in a log line, never the secret itself", async () => {
    capture = H.captureCase("Debug")

    const { logs } = await H.runLogged(
      Effect.logDebug(`C: AUTH PLAIN ${plainBlob}`).pipe(
        Effect.andThen(Effect.logInfo(`the password is ${H.credentials.password}`)),
      ),
    )

    const found = capture.stop()
    expect(logs.map((l) => l.level)).toEqual(["Debug", "Info"])
    // The blob holds the password's base64 too: "\0printer\0" is a whole number of base64 groups.
    expect(places(found)).toEqual([
      "the password in base64 (the AUTH LOGIN answer), the AUTH PLAIN blob in log Debug",
      "the password in log Info",
    ])
    for (const line of found) {
      expect(line).not.toContain(plainBlob)
      expect(line).not.toContain(H.credentials.password)
    }
  })

  it("runs a case at its level: at the default level, debug lines are not logged", async () => {
    capture = H.captureCase("Default")

    const { logs } = await H.runLogged(Effect.logDebug(`C: AUTH PLAIN ${plainBlob}`))

    expect(logs).toEqual([])
    expect(capture.stop()).toEqual([])
  })

  it("finds a secret in a log annotation or in the cause a log line carries", async () => {
    capture = H.captureCase("Debug")

    await H.runLogged(
      Effect.logWarning("failover").pipe(
        Effect.annotateLogs({ token: H.bearerToken }),
        Effect.andThen(Effect.logError("failed", new Error(`AUTH PLAIN ${plainBlob}`))),
      ),
    )

    expect(places(capture.stop())).toEqual([
      "the bearer token in log Warn",
      "the password in base64 (the AUTH LOGIN answer), the AUTH PLAIN blob in log Error",
    ])
  })

  it("finds a secret written to stdout, stderr or the console during the case", () => {
    capture = H.captureCase("Debug")

    process.stdout.write(`stdout: ${passwordBase64}\n`)
    process.stderr.write(Buffer.from(`stderr: ${plainBlob}\n`))
    console.warn("console:", H.bearerToken)

    expect(places(capture.stop())).toEqual([
      "the password in base64 (the AUTH LOGIN answer) in stdout",
      "the password in base64 (the AUTH LOGIN answer), the AUTH PLAIN blob in stderr",
      "the bearer token in console.warn",
    ])
  })

  it("finds a secret an error keeps only in its cause, though its message is clean", async () => {
    capture = H.captureCase("Default")
    const error = new TransportError.TransportError({
      reason: "AuthRejected",
      phase: "auth",
      endpoint,
      detail: "the server rejected the user name or password",
      command: "AUTH PLAIN",
      cause: { response: "535 5.7.8 no", command: `AUTH PLAIN ${plainBlob}` },
    })

    const { result } = await H.runLogged(Effect.fail(error))

    expect(result._tag).toBe("Failure")
    expect(error.message).not.toContain(plainBlob)
    expect(places(capture.stop())).toEqual([
      "the password in base64 (the AUTH LOGIN answer), the AUTH PLAIN blob in error",
    ])
  })

  it("finds a secret in a receipt", async () => {
    capture = H.captureCase("Default")

    await H.runLogged(Effect.succeed({ response: "250 ok", note: passwordBase64 }))

    expect(places(capture.stop())).toEqual([
      "the password in base64 (the AUTH LOGIN answer) in receipt",
    ])
  })

  it("finds nothing in a transcript whose AUTH arguments are masked", async () => {
    capture = H.captureCase("Debug")

    await H.runLogged(
      Effect.logDebug("C: AUTH PLAIN ****").pipe(
        Effect.andThen(Effect.logDebug("C: AUTH LOGIN")),
        Effect.andThen(Effect.logDebug("S: 334 VXNlcm5hbWU6")),
        Effect.andThen(Effect.logDebug("C: ****")),
      ),
    )

    expect(capture.stop()).toEqual([])
  })

  it("plants the bearer token in every case's settings, as a secret", () => {
    const settings = H.settingsOf(H.values({ host: "127.0.0.1", port: 25 }, "NONE"))
    expect(Redacted.isRedacted(settings.trustStore.password)).toBe(true)
    expect(Redacted.value(settings.trustStore.password!)).toBe(H.bearerToken)
    expect(String(settings.trustStore.password)).not.toContain(H.bearerToken)
  })
})
