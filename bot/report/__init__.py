"""The usage report for the communications unit, in modules that only point downwards.

    data.py     ReportData from the database (counts, users, grouped questions)
    similar.py  not-sure questions grouped, shown by the wording they share
    tables.py   the tables (the same rows for the page and the CSV files)
    charts.py   inline SVG charts
    html.py     the page, as text
    write.py    the files: `write_report`, `write_csv`
"""
