from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0009_task_step_resources"),
    ]

    operations = [
        migrations.AddField(
            model_name="debugsample",
            name="location",
            field=models.CharField(blank=True, default="", max_length=2048),
        ),
        migrations.AddField(
            model_name="logline",
            name="iteration",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="logline",
            name="metric",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
    ]
