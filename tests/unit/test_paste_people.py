from userdesk.invitations.rules import PastedPerson, parse_people


def test_named_addresses_bare_emails_and_csv_lines_all_read() -> None:
    people = parse_people(
        "Ann Lee <ann@example.com>\n\nbob@example.com\nCy,Dee,cy@example.com\n"
        "  Mary Ann Smith <mas@example.com>"
    )
    assert people == [
        PastedPerson("Ann", "Lee", "ann@example.com"),
        PastedPerson("", "", "bob@example.com"),
        PastedPerson("Cy", "Dee", "cy@example.com"),
        PastedPerson("Mary", "Ann Smith", "mas@example.com"),
    ]


def test_a_csv_header_decides_the_columns() -> None:
    people = parse_people("email,last name,first name\ndi@example.com,Eve,Di")
    assert people == [PastedPerson("Di", "Eve", "di@example.com")]


def test_each_line_keeps_its_problem() -> None:
    people = parse_people("not an email\nann@example.com\nANN@example.com")
    assert people[0].problem is not None
    assert "not an email" in people[0].problem
    assert people[1].problem is None
    assert people[2].problem == "is listed twice"
