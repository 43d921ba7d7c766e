"""Question import: JSON body or CSV upload (UTF-8, Korean, BOM), row errors, bulk queries."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from publishing.models import PublishOutbox
from study.models import Question
from study.tests.factories import StudyTopicFactory

pytestmark = pytest.mark.django_db
URL = "/api/study-questions/import"


@pytest.fixture
def topic(user):
    return StudyTopicFactory(user=user)


def row(n=1, **overrides):
    body = {
        "subject": "가스안전관리",
        "question_text": f"LNG의 주성분은? ({n})",
        "choices": ["메탄", "에탄", "프로판"],
        "correct_choice": 1,
    }
    body.update(overrides)
    return body


def csv_upload(text: str, *, bom: bool = False, name: str = "questions.csv") -> SimpleUploadedFile:
    data = text.encode("utf-8")
    return SimpleUploadedFile(name, (b"\xef\xbb\xbf" if bom else b"") + data, content_type="text/csv")


def test_json_import_creates_valid_rows_and_reports_bad_ones(api_client, topic):
    rows = [row(1), row(2, correct_choice=9), "not an object", row(4, choices=["a"]), row(5, explanation="해설")]
    response = api_client.post(URL, {"study_topic_id": topic.id, "questions": rows}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 2
    assert [e["row"] for e in body["errors"]] == [2, 3, 4]
    assert "correct_choice" in body["errors"][0]["errors"]
    assert "choices" in body["errors"][2]["errors"]
    created = Question.objects.filter(study_topic=topic).order_by("id")
    assert [q.question_text for q in created] == ["LNG의 주성분은? (1)", "LNG의 주성분은? (5)"]
    assert created[1].explanation == "해설"
    assert sorted(PublishOutbox.objects.values_list("source_id", flat=True)) == [q.id for q in created]


def test_csv_import_with_bom_and_korean(api_client, topic):
    text = (
        "subject,question_text,choice_1,choice_2,choice_3,choice_4,correct_choice,explanation\n"
        "연소공학,\"연소의 3요소는, 무엇인가?\",가연물,산소,점화원,,3,\"점화원 포함\"\n"
        "연소공학,빈 보기,a,,c,,1,\n"
        "가스안전관리,정답 범위 밖,a,b,,,7,\n"
        ",,,,,,,\n"
        "가스안전관리,LPG 주성분,프로판,부탄,메탄,에탄,1,\n"
    )
    upload = csv_upload(text, bom=True)
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["created"] == 2
    assert [e["row"] for e in body["errors"]] == [3, 4]  # the header is row 1
    assert "choices.1" in body["errors"][0]["errors"]
    assert "correct_choice" in body["errors"][1]["errors"]
    first = Question.objects.get(question_text="연소의 3요소는, 무엇인가?")
    assert first.choices == ["가연물", "산소", "점화원"] and first.correct_choice == 3
    assert first.explanation == "점화원 포함" and first.subject == "연소공학"


@pytest.mark.parametrize(
    ("content", "error_code"),
    [
        (b"", "empty_file"),
        ("subject,question_text\n가,나\n".encode(), "invalid_input"),
        ("subject,question_text,choice_1,correct_choice\n가스,질문,a,1\n".encode("cp949"), "invalid_input"),
        # choice columns numbered other than 1..N, or a column named twice: refused, not guessed at
        (b"subject,question_text,choice_0,choice_1,correct_choice\nx,y,a,b,1\n", "invalid_input"),
        (b"subject,question_text,choice_1,choice_3,correct_choice\nx,y,a,b,1\n", "invalid_input"),
        (b"subject,question_text,choice_1,choice_2,choice_01,correct_choice\nx,y,a,b,c,1\n", "invalid_input"),
        (b"subject,question_text,choice_1,choice_2,correct_choice,subject\nx,y,a,b,1,z\n", "invalid_input"),
        ("subject,question_text,choice_1,choice_\uff12,correct_choice\nx,y,a,b,1\n".encode(), "invalid_input"),
        (b"subject,question_text,choice_1,choice_2,choice_" + b"9" * 5000 + b",correct_choice\nx,y,a,b,c,1\n",
         "invalid_input"),
    ],
)
def test_csv_import_refuses_unreadable_files(api_client, topic, content, error_code):
    upload = SimpleUploadedFile("q.csv", content, content_type="text/csv")
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error_code"] == error_code
    assert not Question.objects.exists()


def test_too_many_csv_rows_are_refused_without_reading_the_whole_file(api_client, topic):
    import tracemalloc

    header = b"subject,question_text,choice_1,choice_2,correct_choice\n"
    content = header + b"a\n" * 4_000_000  # 8 MB of one-letter rows
    upload = SimpleUploadedFile("q.csv", content, content_type="text/csv")
    tracemalloc.start()
    try:
        response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 400
    assert response.json()["detail"] == "At most 5000 rows per import."
    # the test client and the multipart parser hold the file's bytes twice or so (~16 MB); reading every record
    # into lists of strings took ~100 MB more
    assert peak < 40 * 1024 * 1024, peak
    assert not Question.objects.exists()


def test_a_csv_file_larger_than_an_import_takes_is_413(api_client, topic, monkeypatch):
    from study.api import questions

    monkeypatch.setattr(questions, "CSV_IMPORT_MAX_BYTES", 100)
    upload = csv_upload("subject,question_text,choice_1,choice_2,correct_choice\n" + "x,y,a,b,1\n" * 20)
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"
    assert not Question.objects.exists()


def test_a_csv_row_that_is_not_utf8_after_a_good_header_is_refused(api_client, topic):
    content = b"subject,question_text,choice_1,choice_2,correct_choice\n" + "가스,질문,a,b,1\n".encode("cp949")
    upload = SimpleUploadedFile("q.csv", content, content_type="text/csv")
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "The CSV file must be UTF-8 encoded."


def test_a_quote_left_open_refuses_the_file_and_names_its_line(api_client, topic):
    header = "subject,question_text,choice_1,choice_2,correct_choice\n"
    rest = "".join(f"가스,문제 {i},a,b,1\n" for i in range(5))
    text = header + "가스,첫 문제,a,b,1\n" + '가스,"열린 따옴표,a,b,1\n' + rest
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": csv_upload(text)}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_input"
    assert response.json()["detail"] == "The CSV file could not be read from line 3 on: unexpected end of data."
    assert not Question.objects.exists()  # neither the row before it nor the rows it swallowed


def test_a_row_with_more_values_than_the_header_is_a_row_error_not_a_shifted_question(api_client, topic):
    header = "subject,question_text,choice_1,choice_2,correct_choice\n"
    text = header + "가스,좋은 문제,a,b,1\n" + "가스,쉼표, 하나 더,a,b,1\n" + "가스,끝의 빈 칸,a,b,1,,\n"
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": csv_upload(text)}, format="multipart")
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 2
    assert [error["row"] for error in body["errors"]] == [3]
    assert "more values than the header" in body["errors"][0]["errors"]["non_field_errors"][0]
    assert sorted(Question.objects.values_list("question_text", flat=True)) == ["끝의 빈 칸", "좋은 문제"]


def test_csv_row_errors_come_in_row_order(api_client, topic):
    header = "subject,question_text,choice_1,choice_2,correct_choice\n"
    text = header + "가스,문제,a,b,9\n" + "가스,넘침,a,b,1,x\n" + "가스,,a,b,1\n"
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": csv_upload(text)}, format="multipart")
    assert response.status_code == 200
    assert [error["row"] for error in response.json()["errors"]] == [2, 3, 4]


def test_import_validation_and_isolation(api_client, other_client, topic):
    assert api_client.post(URL, {"questions": [row()]}, format="json").status_code == 400
    assert api_client.post(URL, {"study_topic_id": topic.id, "questions": "x"}, format="json").status_code == 400
    assert api_client.post(URL, "[1,", content_type="application/json").status_code == 400
    response = other_client.post(URL, {"study_topic_id": topic.id, "questions": [row()]}, format="json")
    assert response.status_code == 404
    assert not Question.objects.exists()


@pytest.mark.postgresql
def test_thousand_row_import_runs_in_a_handful_of_queries(api_client, topic, django_assert_max_num_queries):
    header = "subject,question_text,choice_1,choice_2,choice_3,choice_4,correct_choice,explanation\n"
    lines = [f"과목{i % 5},문제 {i},가,나,다,라,{i % 4 + 1},해설 {i}\n" for i in range(1000)]
    upload = csv_upload(header + "".join(lines))
    with django_assert_max_num_queries(8):
        response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
    assert response.json() == {"created": 1000, "errors": []}
    assert Question.objects.filter(study_topic=topic).count() == 1000
    assert PublishOutbox.objects.count() == 1000


def test_an_answer_key_one_past_the_choices_is_a_row_error_not_a_failed_import(api_client, topic):
    rows = [row(1), row(2, choices=["a", "b"], correct_choice=3)]
    response = api_client.post(URL, {"study_topic_id": topic.id, "questions": rows}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    assert [(e["row"], list(e["errors"])) for e in response.json()["errors"]] == [(2, ["correct_choice"])]


@pytest.mark.parametrize(("spare", "status"), [(0, 200), (-1, 413)])
def test_a_csv_file_of_exactly_the_limit_is_taken(api_client, topic, monkeypatch, spare, status):
    from study.api import questions

    upload = csv_upload("subject,question_text,choice_1,choice_2,correct_choice\n" + "x,y,a,b,1\n" * 20)
    monkeypatch.setattr(questions, "CSV_IMPORT_MAX_BYTES", upload.size + spare)
    response = api_client.post(URL, {"study_topic_id": topic.id, "file": upload}, format="multipart")
    assert response.status_code == status
    assert Question.objects.count() == (20 if status == 200 else 0)


def test_an_import_into_a_topic_deleted_after_it_was_read_creates_nothing(topic):
    """The view reads the topic live, then the import locks it: a delete committed in between is a 404."""
    from study.models import StudyTopic
    from study.services.questions import questions_import
    from study.services.topics import topic_delete
    from studyserver.errors import NotFound

    topic_delete(topic=StudyTopic.objects.get(pk=topic.pk))
    with pytest.raises(NotFound):
        questions_import(user=topic.user, topic=topic, rows=[{**row(1), "source": {}}])
    assert not Question.objects.exists()
