"""The book's machinery, apart from its content (report/): what every notebook runs first, and the HTML report.

notebook  renderer set-up, the provenance line, the data-root check, the sets a notebook trains on (found or
          fetched), what its training costs on this machine before it starts
live      a live loss / AUC plot while a notebook trains (d2l's Animator); off under CI, nbval and `medlib report`
build     `python -m medlib report` / `notebooks`: execute the notebooks into an offline HTML report
offline   one notebook as an HTML page that needs no network (maths as MathML, no CDN scripts)
site      what makes the pages a book: chapter sidebar, contents, prev/next, search, one shared plotly.js
"""
