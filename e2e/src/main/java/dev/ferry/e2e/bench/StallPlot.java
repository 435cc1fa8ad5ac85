// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * The stall distributions as a PNG, drawn with java.awt (headless): one cumulative distribution per
 * connection count and method, on a logarithmic time axis. Stalls of 0 (the pause was hidden in the
 * wait before the next token) sit at the axis' left edge.
 */
final class StallPlot {
  private static final int WIDTH = 1100;
  private static final int HEIGHT = 700;
  private static final int LEFT = 80;
  private static final int RIGHT = 300;
  private static final int TOP = 60;
  private static final int BOTTOM = 70;
  private static final double MIN_MS = 0.01;
  private static final Color[] COLORS = {
    new Color(0x1f77b4),
    new Color(0xff7f0e),
    new Color(0x2ca02c),
    new Color(0xd62728),
    new Color(0x9467bd),
    new Color(0x8c564b)
  };

  private record Series(String label, double[] values, Color color, Stroke kind) {}

  private enum Stroke {
    OPERATOR,
    FERRY,
    RECONNECT,
    CRIU
  }

  private StallPlot() {}

  /** Writes the plot; returns a line saying where, or why it could not be drawn. */
  static String write(List<Figures> results, Path png) {
    try {
      List<Series> series = new ArrayList<>();
      for (int i = 0; i < results.size(); i++) {
        Figures f = results.get(i);
        Color c = COLORS[i % COLORS.length];
        String n = "%,d".formatted(f.connections());
        if (f.operator() != null) {
          series.add(
              new Series(
                  "Ferry, operator path, N=" + n,
                  f.operator().clients().stallMs(),
                  c,
                  Stroke.OPERATOR));
        }
        if (f.ferry() != null) {
          series.add(new Series("Ferry, agent path, N=" + n, f.ferry().stallMs(), c, Stroke.FERRY));
        }
        series.add(
            new Series(
                "(a) reconnect, N=" + n, f.reconnect().streamStallMs(), c, Stroke.RECONNECT));
        if (f.criu().reason() == null) {
          series.add(new Series("(b) CRIU, N=" + n, f.criu().stallMs(), c, Stroke.CRIU));
        }
      }
      draw(series, png);
      return "stall distributions plotted to " + png;
    } catch (Exception | Error e) {
      // A machine without fonts cannot draw text: the table is what counts.
      return "the plot could not be drawn (" + e + "); the table above has the figures";
    }
  }

  private static void draw(List<Series> series, Path png) throws Exception {
    double maxMs = series.stream().flatMapToDouble(s -> Arrays.stream(s.values())).max().orElse(1);
    double lo = Math.log10(MIN_MS);
    double hi = Math.ceil(Math.log10(Math.max(maxMs, 10)));
    BufferedImage img = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(
        RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, WIDTH, HEIGHT);
    int plotW = WIDTH - LEFT - RIGHT;
    int plotH = HEIGHT - TOP - BOTTOM;

    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
    g.setColor(Color.BLACK);
    g.drawString(
        "Client-visible stall per connection: cumulative distribution (streaming clients)",
        LEFT,
        30);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    // Grid and axes.
    for (int d = (int) lo; d <= hi; d++) {
      int x = LEFT + (int) ((d - lo) / (hi - lo) * plotW);
      g.setColor(new Color(0xdddddd));
      g.drawLine(x, TOP, x, TOP + plotH);
      g.setColor(Color.BLACK);
      String label = d >= 0 ? "%,.0f".formatted(Math.pow(10, d)) : "%s".formatted(Math.pow(10, d));
      g.drawString(label, x - g.getFontMetrics().stringWidth(label) / 2, TOP + plotH + 18);
    }
    for (int p = 0; p <= 100; p += 10) {
      int y = TOP + plotH - p * plotH / 100;
      g.setColor(new Color(0xdddddd));
      g.drawLine(LEFT, y, LEFT + plotW, y);
      g.setColor(Color.BLACK);
      String label = p + "%";
      g.drawString(label, LEFT - 8 - g.getFontMetrics().stringWidth(label), y + 4);
    }
    g.drawRect(LEFT, TOP, plotW, plotH);
    g.drawString(
        "stall (ms, log scale; 0 drawn at " + MIN_MS + ")", LEFT + plotW / 2 - 90, HEIGHT - 25);
    g.drawString("clients", 15, TOP - 10);

    int legendY = TOP + 10;
    for (Series s : series) {
      g.setColor(s.color());
      g.setStroke(stroke(s.kind()));
      double[] v = s.values().clone();
      Arrays.sort(v);
      if (v.length > 0) {
        int px = LEFT;
        int py = TOP + plotH;
        for (int i = 0; i < v.length; i++) {
          double lx = (Math.log10(Math.max(MIN_MS, v[i])) - lo) / (hi - lo);
          int x = LEFT + (int) (lx * plotW);
          int y = TOP + plotH - (int) ((double) (i + 1) / v.length * plotH);
          // A step: along at the previous height, then up.
          g.drawLine(px, py, x, py);
          g.drawLine(x, py, x, y);
          px = x;
          py = y;
        }
      }
      g.drawLine(LEFT + plotW + 15, legendY, LEFT + plotW + 55, legendY);
      g.setColor(Color.BLACK);
      g.drawString(s.label() + " (" + v.length + ")", LEFT + plotW + 62, legendY + 4);
      legendY += 20;
    }
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }

  private static BasicStroke stroke(Stroke kind) {
    return switch (kind) {
      case FERRY -> new BasicStroke(2.5f);
      // Thinner, so that the agent path's line shows beneath it where the two coincide.
      case OPERATOR -> new BasicStroke(1.2f);
      case RECONNECT ->
          new BasicStroke(
              1.8f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {8, 5}, 0);
      case CRIU ->
          new BasicStroke(
              1.8f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {2, 4}, 0);
    };
  }
}
