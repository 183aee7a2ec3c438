"""The upload page of ``tools/serve.py`` (``GET /``): choose an image, see the classes and scores."""

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ppnets classifier</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}table{border-collapse:collapse}
td,th{padding:.2em .8em;border-bottom:1px solid #ccc;text-align:left}#error{color:#b00}img{max-height:10em}</style>
</head><body>
<h1>ppnets classifier</h1>
<p id="model">loading model info…</p>
<form id="form"><input type="file" id="file" name="image" accept="image/*"> <button type="submit">Classify</button></form>
<p><img id="preview" alt=""></p>
<p id="error"></p>
<table id="results" hidden><thead><tr><th>class</th><th>label</th><th>score</th></tr></thead><tbody></tbody></table>
<script>
fetch("model").then(r => r.json()).then(m => {
  document.getElementById("model").textContent =
    `${m.model_name}: ${m.class_num} classes, input ${m.input_shape.join("×")}, ${m.backend} ${m.precision}`;
});
document.getElementById("form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const file = document.getElementById("file").files[0];
  const error = document.getElementById("error"), table = document.getElementById("results");
  error.textContent = ""; table.hidden = true;
  if (!file) { error.textContent = "choose an image first"; return; }
  document.getElementById("preview").src = URL.createObjectURL(file);
  const body = new FormData(); body.append("image", file);
  const answer = await (await fetch("predict", {method: "POST", body})).json();
  if (answer.error) { error.textContent = answer.error; return; }
  const rows = table.querySelector("tbody"); rows.innerHTML = "";
  for (const r of answer.results) {
    const tr = rows.insertRow();
    for (const v of [r.class_id, r.label, r.score.toFixed(4)]) tr.insertCell().textContent = v;
  }
  table.hidden = false;
});
</script>
</body></html>
"""
