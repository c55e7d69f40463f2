"""Denoisers: PSNR and SSIM per noise type and method, and a before / denoised / clean gallery with a zoom."""

import streamlit as st

from inspection.dashboard import charts, images, reports, ui

st.title("Denoisers")
st.caption("How close each denoiser brings a noisy photo to the clean one, and whether a defect survives it.")

with ui.guard("the denoisers page"):
    src = ui.sources()
    ui.sidebar(src)
    refs = ui.require_reports(src)
    if refs:
        ref = ui.pick_report(refs, key="denoise_report")
        report = ui.load_report(ref)
        summary = reports.denoise_summary_frame(report)
        samples = reports.denoise_samples_frame(report)
        if summary.empty and samples.empty:
            ui.empty_state("This report has no denoising results.")
        else:
            st.dataframe(
                summary,
                hide_index=True,
                column_config={
                    "psnr": st.column_config.NumberColumn("PSNR (dB)", format="%.1f"),
                    "ssim": st.column_config.NumberColumn("SSIM", format="%.3f"),
                    "ms_per_image": st.column_config.NumberColumn("ms / image", format="%.1f"),
                },
            )
            if not samples.empty:
                psnr_tab, ssim_tab = st.tabs(["PSNR", "SSIM"])
                with psnr_tab:
                    st.altair_chart(charts.quality_box_chart(samples, "psnr"))
                with ssim_tab:
                    st.altair_chart(charts.quality_box_chart(samples, "ssim"))

        st.subheader("Before, denoised, clean")
        entries = [e for e in reports.gallery_entries(report, ref.path) if e.noisy is not None]
        if not entries:
            ui.empty_state("This report has no example photos.")
        else:
            names = [e.noise_type for e in entries]
            default = names.index("periodic") if "periodic" in names else 0
            entry = entries[names.index(st.selectbox("Noise type", names, index=default, key="gallery_type"))]
            noisy = images.read_gray(entry.noisy) if entry.noisy else None
            clean = images.read_gray(entry.clean) if entry.clean else None
            denoised = images.read_gray(entry.denoised) if entry.denoised else None
            frames = [
                (name, im)
                for name, im in (("noisy", noisy), ("denoised", denoised), ("clean", clean))
                if im is not None
            ]
            reference = clean if clean is not None else frames[0][1]
            auto = images.detail_crop(reference, size=max(16, min(reference.shape) // 4))
            c1, c2, c3 = st.columns(3)
            size = c1.slider(
                "Crop size (px)", 16, max(16, min(reference.shape)), auto.size, step=8, key="crop_size"
            )
            cx = c2.slider(
                "Crop centre x", 0.0, 1.0, (auto.left + auto.size / 2) / reference.shape[1], key="crop_x"
            )
            cy = c3.slider(
                "Crop centre y", 0.0, 1.0, (auto.top + auto.size / 2) / reference.shape[0], key="crop_y"
            )
            crop = images.crop_at(reference, cx, cy, size)
            for col, (name, im) in zip(st.columns(len(frames)), frames, strict=True):
                with col:
                    st.image(images.outline(im, crop), caption=name, width="stretch")
                    st.image(images.zoom(im, crop), caption=f"{name}, zoomed", width="stretch")
            st.caption(
                "The crop starts on the most detailed area of the clean photo; move it to follow a defect."
            )
            ui.gallery_heat_map(entry)
