"""Exploratory data analysis of sensor readings: tables, figures and the MLflow run."""
