from userdesk.imports import rules


def test_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    text = (
        " E-mail ,First name\r\n"
        "ann@example.com, Ann \r\n"
        "\r\n"
        ",\r\n"
        "bob@example.com\r\n"
        '"cy@x.org","C, Y"\r\n'
    )
    found = rules.rows(text, {"email": "E-mail", "first_name": "First name"})
    assert found == [
        rules.Row(2, {"email": "ann@example.com", "first_name": "Ann"}),
        rules.Row(5, {"email": "bob@example.com", "first_name": ""}),
        rules.Row(6, {"email": "cy@x.org", "first_name": "C, Y"}),
    ]


def test_the_mapping_is_guessed_from_the_header() -> None:
    columns = rules.header("E-mail,Given name,Surname,Group\n")
    assert rules.guess_mapping(columns) == {
        "first_name": "Given name",
        "last_name": "Surname",
        "email": "E-mail",
        "groups": "Group",
    }
    assert rules.mapping_problem({"first_name": "Given name"}, columns) is not None
    assert (
        rules.mapping_problem({"email": "Mail"}, columns)
        == "There is no column 'Mail' in the file."
    )
