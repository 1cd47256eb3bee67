import { ConfigSource } from "@spoc-mail/core"
import { describe, expect, it } from "vitest"
import { decode, read } from "../src/SpocConfReader.ts"

const snapshotOf = (text: string): ConfigSource.SourceSnapshot => ({
  layer: "spoc.conf",
  ...read(text, "/opt/spoc/conf/modules/spoc.conf"),
})

const said = (text: string, key: string): string | undefined => {
  const found = snapshotOf(text).entries.find((e) => e.key === key)
  if (found === undefined) return undefined
  return found.value._tag === "Set" ? ConfigSource.reveal(found.value.value) : found.value._tag
}

const messages = (text: string): Array<string> => snapshotOf(text).warnings.map((w) => w.message)

describe("C15: values are read as written", () => {
  it("keeps # and ; inside a value", () => {
    expect(said("mailpass = pa#ss;w0rd!\n", "mailpass")).toBe("pa#ss;w0rd!")
  })

  it("does not take a lone [EMPTY] line for a section or a setting", () => {
    const text = "mailserver = a.example\n[EMPTY]\nmailuser = svc\n"
    expect(said(text, "mailserver")).toBe("a.example")
    expect(said(text, "mailuser")).toBe("svc")
    expect(snapshotOf(text).entries).toHaveLength(2)
    expect(messages(text)).toEqual(["a lone [EMPTY] line is not a setting and is ignored"])
  })

  it("forces empty with [EMPTY] and inherits with nothing", () => {
    expect(said("mailuser = [EMPTY]", "mailuser")).toBe("ForceEmpty")
    expect(said("mailuser = [empty]", "mailuser")).toBe("ForceEmpty")
    expect(said("mailuser =", "mailuser")).toBe("Inherit")
    expect(said("mailuser = \t ", "mailuser")).toBe("Inherit")
    expect(messages("mailuser =   ")).toEqual([])
  })
})

describe("values", () => {
  it("keeps backslashes literal, with no escapes and no line continuation", () => {
    const text = "trustStorePath = \\\\server\\share\\new\\\nmailserver = a.example\n"
    expect(said(text, "trustStorePath")).toBe("\\\\server\\share\\new\\")
    expect(said(text, "mailserver")).toBe("a.example")
  })

  it("keeps words that look like other types as strings", () => {
    expect(said("mailserverbackup = true", "mailserverbackup")).toBe("true")
    expect(said("mailSmtpPort = 0465", "mailSmtpPort")).toBe("0465")
  })

  it("keeps a separator character inside the value", () => {
    expect(said("trustStorePath: C:\\spoc\\conf=x", "trustStorePath")).toBe("C:\\spoc\\conf=x")
    expect(said("mailfrom = a=b:c@example.com", "mailfrom")).toBe("a=b:c@example.com")
  })

  it("keeps a value that starts with # or ! after the separator", () => {
    expect(said("mailpass = #hash", "mailpass")).toBe("#hash")
    expect(said("mailpass=!bang", "mailpass")).toBe("!bang")
  })

  it("keeps blanks inside a value and trims those at the end with a warning", () => {
    const text = "mailfrom = Print  Room\t<p@example.com> \t\n"
    expect(said(text, "mailfrom")).toBe("Print  Room\t<p@example.com>")
    expect(messages(text)).toEqual(["trailing spaces after the value of mailfrom were removed"])
  })

  it("keeps quotes and warns only when they wrap the whole value", () => {
    expect(said("mailuser = 'svc'", "mailuser")).toBe("'svc'")
    expect(messages("mailuser = 'svc'")).toHaveLength(1)
    const named = 'mailfrom = "Print Room" <p@example.com>'
    expect(said(named, "mailfrom")).toBe('"Print Room" <p@example.com>')
    expect(messages(named)).toEqual([])
  })

  it("never puts a secret in a warning", () => {
    const text = 'mailpass = "hunter2"  \nmailpass = hunter3\n'
    expect(messages(text)).toHaveLength(3)
    expect(JSON.stringify(snapshotOf(text))).not.toMatch(/hunter/)
  })

  it("wraps secrets in Redacted", () => {
    const entry = snapshotOf("trustStorePassword = changeit\n").entries[0]!
    expect(entry.value._tag).toBe("Set")
    expect(String((entry.value as { value: unknown }).value)).not.toContain("changeit")
  })
})

describe("lines", () => {
  it("accepts = or : with any spaces or tabs around it", () => {
    for (const line of ["mailSmtpPort=587", "mailSmtpPort : 587", "\t mailSmtpPort\t=\t587"]) {
      expect(said(line, "mailSmtpPort"), line).toBe("587")
    }
  })

  it("treats # and ! as comments only at the start of a line", () => {
    const text = "# mailserver = a\n  ! mailserver = b\n\t#mailserver=c\nmailserver = d # e\n"
    expect(snapshotOf(text).entries.map((e) => e.key)).toEqual(["mailserver"])
    expect(said(text, "mailserver")).toBe("d # e")
  })

  it("numbers lines the same with CRLF, LF or CR line ends and no final newline", () => {
    for (const end of ["\r\n", "\n", "\r"]) {
      const text = ["# c", "", "mailserver = a.example", "mailSmtpPort = 25"].join(end)
      const lines = snapshotOf(text).entries.map((e) =>
        e.origin._tag === "File" ? e.origin.line : 0,
      )
      expect(lines, JSON.stringify(end)).toEqual([3, 4])
      expect(said(text, "mailSmtpPort")).toBe("25")
    }
  })

  it("lets the last of a repeated key win and names both lines", () => {
    const text = "mailSmtpPort = 25\nmailSmtpPort = 587\nmailserver = a\nmailSmtpPort = 2525\n"
    const snapshot = snapshotOf(text)
    expect(snapshot.entries.filter((e) => e.key === "mailSmtpPort")).toHaveLength(1)
    expect(said(text, "mailSmtpPort")).toBe("2525")
    expect(messages(text)).toEqual([
      "mailSmtpPort is set on line 1 and again on line 2; line 2 wins",
      "mailSmtpPort is set on line 2 and again on line 4; line 4 wins",
    ])
    expect(snapshot.warnings[1]!.fix).toBe("delete one of the two lines (2 or 4)")
  })

  it("lets a repeated key that is empty inherit, since the last one wins", () => {
    expect(said("mailuser = svc\nmailuser =\n", "mailuser")).toBe("Inherit")
  })

  it("ignores [section] lines with a warning that does not repeat them", () => {
    const text = "[S3cr#t;Pw!zq]\nmailserver = a.example\n"
    expect(said(text, "mailserver")).toBe("a.example")
    expect(messages(text)).toEqual(["a [section] line is ignored: spoc.conf has no sections"])
    expect(JSON.stringify(snapshotOf(text).warnings)).not.toContain("S3cr#t")
  })

  it("ignores lines with no separator or no key, with a warning", () => {
    const text = "mailserver a.example\n= lonely value\n"
    expect(snapshotOf(text).entries).toEqual([])
    expect(messages(text)).toEqual([
      "the line has no = or : and is ignored",
      "the line has no key before its separator and is ignored",
    ])
  })

  it("keeps unknown keys so that resolution can report them", () => {
    expect(said("mailSmtpEncription = STARTTLS", "mailSmtpEncription")).toBe("STARTTLS")
  })
})

describe("decoding", () => {
  const text = "mailfrom = Tiskové služby <p@example.com>\r\nmailSmtpPort = 25"

  it("reads UTF-8 with and without a BOM", () => {
    const utf8 = Buffer.from(text, "utf8")
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8])
    expect(decode(utf8)).toEqual({ ok: true, text, encoding: "UTF-8" })
    expect(decode(bom)).toEqual({ ok: true, text, encoding: "UTF-8 with BOM" })
  })

  it("reads UTF-16LE and UTF-16BE with a BOM", () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")])
    const be = Buffer.from(le)
    be.swap16()
    expect(decode(le)).toEqual({ ok: true, text, encoding: "UTF-16LE" })
    expect(decode(be)).toEqual({ ok: true, text, encoding: "UTF-16BE" })
  })

  it("refuses bytes that are not UTF-8 instead of replacing them", () => {
    const ansi = Buffer.from("mailfrom = Tiskov\xe9 <p@example.com>\n", "latin1")
    const decoded = decode(ansi)
    expect(decoded.ok).toBe(false)
    expect(decoded).toMatchObject({ problem: expect.stringMatching(/not valid UTF-8/) })
  })

  it("refuses UTF-16 without a BOM and a UTF-16 file cut in the middle", () => {
    expect(decode(Buffer.from("mailserver=a", "utf16le"))).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/NUL/),
    })
    const cut = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from("ab", "utf16le"),
      Buffer.of(0x63),
    ])
    expect(decode(cut)).toMatchObject({ ok: false, problem: expect.stringMatching(/UTF-16LE/) })
  })

  it("reads an empty file as no settings", () => {
    expect(decode(new Uint8Array())).toEqual({ ok: true, text: "", encoding: "UTF-8" })
    expect(snapshotOf("").entries).toEqual([])
  })
})
