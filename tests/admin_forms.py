"""What a browser posts for an admin change form as rendered: the tests that save the event's page use it."""

from __future__ import annotations

from django import forms


def form_data(form: forms.BaseForm) -> dict:
    """One form's fields as posted (split date/time widgets, unchecked boxes absent), under the form's prefix."""
    data = {}
    for name, field in form.fields.items():
        key, value = form.add_prefix(name), form[name].value()
        if isinstance(field.widget, forms.MultiWidget):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{key}_{index}"] = "" if part is None else str(part)
        elif isinstance(field, forms.BooleanField):
            if value:
                data[key] = "on"
        else:
            data[key] = "" if value is None else value
    return data


def admin_form_data(page) -> dict:
    """The change page's whole post: the model's form and every inline formset (management form included)."""
    data = {"_save": "Save", **form_data(page.context["adminform"].form)}
    for inline in page.context["inline_admin_formsets"]:
        data.update(form_data(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(form_data(form))
    return data
