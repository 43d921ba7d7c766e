# study/0001 gained the deck index after it had landed: databases that applied the earlier 0001 lack it. It is
# created here where missing (PostgreSQL only, like the index; elsewhere, and where it exists, nothing happens).

from django.db import migrations

INDEX = "study_card_user_deck_idx"


def create_deck_index_if_missing(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    card = apps.get_model("study", "MemoCard")
    index = next(index for index in card._meta.indexes if index.name == INDEX)
    statement = str(index.create_sql(card, schema_editor))
    schema_editor.execute(statement.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))


class Migration(migrations.Migration):

    dependencies = [
        ('study', '0013_cardprogress_last_rating_key'),
    ]

    operations = [
        migrations.RunPython(create_deck_index_if_missing, migrations.RunPython.noop, elidable=True),
    ]
