from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compat", "0004_task_created_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskextra",
            name="public",
            field=models.BooleanField(default=False),
        ),
    ]
