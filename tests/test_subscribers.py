"""The subscriber CSV: validation, line numbers, folding duplicates, streaming."""

from __future__ import annotations

import random
import string
import subprocess
import sys
import textwrap

import pytest
from email_validator import EmailNotValidError, validate_email

from digest.errors import ConfigError, ContentError
from digest.ledger import Ledger
from digest.model import RenderedEmail
from digest.subscribers import (
    Audience,
    BadRow,
    InvalidAddress,
    Subscriber,
    check_file,
    count_rows,
    normalize,
    parse_addresses,
    read,
)


def write(tmp_path, text: str, name: str = "subscribers.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_good_and_bad_rows_with_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "Email,Name,Plan\n"
        "ann@example.com,Ann Example,pro\n"
        "\n"  # blank line: skipped silently
        '"bob@example.com","Builder, Bob",free\n'
        "not-an-address,Broken,free\n"
        '"multi@example.com","A name\non two lines",x\n'
        "@example.com,No local part,x\n"
        ",Missing address,x\n"
        "Zoe@Example.COM,Zoë\n"
        "x@localhost,No dot,x\n",
    )
    items = list(read(path))
    good = [i for i in items if isinstance(i, Subscriber)]
    bad = [i for i in items if isinstance(i, BadRow)]
    assert [(s.email, s.name, s.line) for s in good] == [
        ("ann@example.com", "Ann Example", 2),
        ("bob@example.com", "Builder, Bob", 4),
        ("multi@example.com", "A name on two lines", 6),
        ("Zoe@example.com", "Zoë", 10),
    ]
    assert good[-1].key == "zoe@example.com"
    assert [b.line for b in bad] == [5, 8, 9, 11]
    assert str(bad[0]).startswith(f"{path}:5: 'not-an-address' is not a valid address")
    assert "no email address" in bad[2].message


def test_header_variants_bom_and_first_name(tmp_path):
    path = write(tmp_path, "\ufeffE-Mail Address;x\n", encoding="utf-8")
    with pytest.raises(ContentError, match="no 'email' column"):
        list(read(path))
    path = write(tmp_path, "\ufeffFirst Name,E-Mail,Full Name\nAnn,ann@example.com,Ann Example\n")
    (s,) = list(read(path))
    assert (s.email, s.name, s.first_name) == ("ann@example.com", "Ann Example", "Ann")
    assert s.recipient().first_name == "Ann"


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ContentError, match=r"subscriber list not found.*subscribers\.file"):
        list(read(tmp_path / "nope.csv"))
    assert list(read(write(tmp_path, ""))) == []
    assert list(read(write(tmp_path, "email\n"))) == []


def test_invalid_utf8_is_a_bad_row_not_a_crash(tmp_path):
    path = write(
        tmp_path,
        b"email,name\nann@example.com,Ann\n\xff\xfe@example.com,X\nbob@example.com,B\xe9b\n",
    )
    items = list(read(path))
    assert [type(i).__name__ for i in items] == ["Subscriber", "BadRow", "Subscriber"]
    assert items[1].line == 3 and "UTF-8" in items[1].message
    assert items[2].name == "B\ufffdb"


def test_names_cannot_carry_line_breaks_or_controls(tmp_path):
    path = write(tmp_path, 'email,name\nann@example.com,"Ann\r\nBcc: x-evil\x00"\n')
    (s,) = list(read(path))
    assert s.name == "Ann Bcc: x-evil"


STRAY = (
    "email,name,plan\n"
    "ann@example.com,Ann,pro\n"
    'bob@example.com,"Bob,free\n'  # line 3: the quote is never closed here
    "cy@example.com,Cy,free\n"
    "dee@example.com,Dee,pro\n"
)


@pytest.mark.parametrize(
    "text, line, end",
    [
        (STRAY, 3, 5),
        # Closed by the next quote, several rows later: those rows were swallowed.
        (STRAY + 'eve@example.com,"Eve",pro\nfay@example.com,Fay,x\n', 3, 6),
        # The quote opens the email field.
        ('email,name\nann@example.com,Ann\n"bob@example.com,Bob\ncy@example.com,Cy\n', 3, 4),
        # In a column we ignore.
        ('email,name,note\nann@example.com,Ann,"x\nbob@example.com,Bob,y\n', 2, 3),
    ],
)
def test_a_stray_quote_is_reported_where_it_opened_and_refused(tmp_path, text, line, end):
    path = write(tmp_path, text)
    items = list(read(path))
    (broken,) = [i for i in items if isinstance(i, BadRow) and i.broken]
    assert broken.line == line and f"runs on to line {end}" in broken.message
    assert str(broken).startswith(f'{path}:{line}: a quote (") opened on this line')
    with pytest.raises(ContentError, match=rf"subscribers\.csv:{line}: a quote") as exc:
        check_file(path)
    assert "Fix the stray or missing quote" in str(exc.value)
    audience = Audience(path)
    list(audience)
    assert audience.broken == broken


def test_line_breaks_without_addresses_after_them_are_no_stray_quote(tmp_path):
    path = write(
        tmp_path,
        'email,name,note\nann@example.com,"Ann\nExample","two\nline note"\nbob@example.com,B,\n',
    )
    check_file(path)  # no error
    assert [s.name for s in read(path)] == ["Ann Example", "B"]
    check_file(write(tmp_path, "email\nann@example.com\n"))  # no quote at all: not even parsed


@pytest.mark.parametrize(
    "notes",
    [
        # RFC 4180: a quoted cell may hold line breaks, and a note may name addresses.
        '"Met at PyCon.\nAsk bob@example.com about the talk."',
        '"Referred by\nbob@example.com"',
        '"Lines:\nbob@example.com wrote in, cy@example.com too\n- cc: dee@example.com"',
    ],
)
def test_a_multi_line_note_naming_addresses_is_a_valid_list(tmp_path, notes):
    """A quoted multi-line cell in an ignored column is valid CSV: no stray quote, no
    refused send. A stray quote is told apart by what it swallows: lines that read as
    subscriber rows of this file (its delimiter, an address in the email column)."""
    path = write(
        tmp_path,
        f"email,name,notes\nann@example.com,Ann,{notes}\nbob@example.com,Bob,\n"
        'cy@example.com,"Cy",x\n',
    )
    check_file(path)  # no error
    items = list(read(path))
    assert [i.email for i in items if isinstance(i, Subscriber)] == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert not [i for i in items if isinstance(i, BadRow)]


def test_fast_path_agrees_with_email_validator():
    rng = random.Random(3)
    chars = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.@\"(),:;<>[]\\ é"
    domains = ["example.com", "Example.ORG", "a-b.co", "x.y.z", "-a.com", "a.b-", "foo.test",
               "foo.local", "xn--bcher-kva.de", "b.c1", "b.123", "localhost"]  # fmt: skip
    samples = ["a..b@x.com", ".a@x.com", "a.@x.com", "x@" + "a" * 64 + ".com", "a" * 65 + "@x.com"]
    samples += [
        "".join(rng.choice(chars) for _ in range(rng.randint(1, 10))) + "@" + rng.choice(domains)
        for _ in range(5000)
    ]
    for address in samples:
        try:
            v = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
            want: str | None = v.ascii_email or v.normalized
        except EmailNotValidError:
            want = None
        try:
            got: str | None = normalize(address)
        except InvalidAddress:
            got = None
        assert got == want, address


def test_duplicates_fold_case_insensitively_in_the_ledger(tmp_path):
    path = write(
        tmp_path,
        "email,name\nann@example.com,Ann\nANN@EXAMPLE.COM,Ann again\nbob@example.com,Bob\n"
        "Ann@Example.com,Third\n",
    )
    audience = Audience(path)
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(RenderedEmail("2026-W48", "s", "p", "h", "t"))
        added, folded = ledger.enqueue(
            "2026-W48", ((s.key, s.email, s.name, s.first_name) for s in audience)
        )
        assert (added, folded) == (2, 2)
        assert [(r.email, r.name) for r in ledger.to_send("2026-W48")] == [
            ("ann@example.com", "Ann"),  # the first row wins
            ("bob@example.com", "Bob"),
        ]
    assert audience.rows == 4 and audience.invalid == 0


def test_streaming_keeps_memory_flat(tmp_path):
    """300,000 rows: the reader's peak memory grows by far less than the file's size (a
    list held in memory would take over 50 MB)."""
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("email,name\n")
        for i in range(300_000):
            f.write(f"user{i}@example{i % 50}.com,User Number {i}\n")
            if i % 10_000 == 0:
                f.write(f"broken{i},Bad row\n")
    assert count_rows(path) == 300_030
    code = textwrap.dedent(
        f"""
        import resource
        from digest.subscribers import Audience
        audience = Audience({str(path)!r}, keep=5)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        n = sum(1 for _ in audience)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(n, audience.invalid, len(audience.problems), after - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, invalid, kept, grown_kb = map(int, out.stdout.split())
    assert (n, invalid, kept) == (300_000, 30, 5)
    assert grown_kb < 4_000, f"grew {grown_kb} KB for a {path.stat().st_size // 1024} KB file"


def test_parse_addresses_for_preview():
    got = parse_addresses(["ann@example.com, Bob@Example.com", "ann@EXAMPLE.com"])
    assert [r.email for r in got] == ["ann@example.com", "Bob@example.com"]
    with pytest.raises(ConfigError, match="'nope' is not a valid address"):
        parse_addresses(["ann@example.com,nope"])
    with pytest.raises(ConfigError, match="at least one address"):
        parse_addresses([" , "])


def test_check_refuses_a_list_that_cannot_be_read(tmp_path):
    with pytest.raises(ContentError, match=r"nope\.csv: subscriber list not found"):
        check_file(tmp_path / "nope.csv")
    with pytest.raises(ContentError, match=r"empty\.csv:1: the subscriber list is empty"):
        check_file(write(tmp_path, "", name="empty.csv"))
    with pytest.raises(ContentError, match=r"x\.csv:1: no 'email' column .*found: mail_to, name"):
        check_file(write(tmp_path, "mail_to,name\nann@example.com,Ann\n", name="x.csv"))
    check_file(write(tmp_path, "email,name\n"))  # no one yet is not an error
